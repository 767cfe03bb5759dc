"""Algorithm Distillation on Atari: DQN learning histories as training data, the frame encoder
choice, the action set, which games an encoder saw, and the in-context agent on ALE envs.

One token per step, as on the toy rungs (``model.py``)::

    token[t] = embed(frames t-3..t) + embed(action[t-1]) + w * sign(reward[t-1]) + b * first[t]

* **Frames.** A history stores each 84x84 frame once (``envs.atari``); the 4-frame stack the
  DQN saw at step t is rebuilt by index (frames t-3..t, clamped at the episode's first frame,
  exactly ``FrameStackObservation(padding_type="reset")``). Training stores are *views* over
  the histories' memory maps (``ConcatColumn``): nothing is copied and a 10^6-step history is
  never loaded whole.
* **Encoders** (``ENCODERS``): ``nature_cnn`` — the model's own Nature-DQN CNN, trained end to
  end with the transformer (AD on DMLab Watermaze); ``frozen_ae`` — a small conv autoencoder
  trained once on the training games' frames (``frame_encoder``), frozen, with every history's
  embeddings cached, so the transformer is a ``vector`` model over ``[T, emb_dim]``.
* **Actions.** The protocol's full 18-action set for every game; a history recorded with a
  game's minimal set is mapped onto it (``full_action_map``).
* **Rewards** enter as their sign (the DQN learned from clipped rewards; scores differ by game).
* **Games seen.** A model records the games its encoder saw (``AtariInfo.encoder_games``). A
  held-out game (Space Invaders) must not be among them unless the run is the explicitly
  flagged "encoder saw the game" variant; otherwise training and evaluation raise
  ``EncoderSawGameError``.
"""
from __future__ import annotations

import dataclasses
import re
import shutil
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import gymnasium as gym
import numpy as np

from envs.atari import FULL_ACTIONS, PROTOCOL, episode_starts, frame_stacks
from learners.errors import HistoryFitError
from learners.checkpoint import load_state
from learners.files import read_json
from learners.history import HistoryError, LearningHistory
from learners.history_store import open_partial
from learners.protocols import SampledAgent, Transition
from learners.recorder import CHECKPOINT
from learners.transformer.agent import TransformerImitator
from learners.transformer.data import PackedStore
from learners.transformer.frame_encoder import FrozenEncoder, cached_embeddings
from learners.transformer.model import ADTransformer

ENCODERS = ("frozen_ae", "nature_cnn")
#: Games kept out of every training run (the transplant question's target) unless a run is the
#: flagged "encoder saw the game" variant.
HELD_OUT_GAMES = ("SpaceInvaders",)
ACTION_SET = "full18"
FRAME_SIZE = int(PROTOCOL["screen_size"])
FRAME_STACK = int(PROTOCOL["frame_stack"])
_GAME = re.compile(r"^ALE/([A-Za-z0-9]+)-v5$")


class AtariFitError(HistoryFitError):
    """Frames that do not fit the model's encoder (size, dtype, stacking)."""


class ActionSetError(HistoryFitError):
    """A model or history on another action set than the protocol's full 18 actions."""


class EncoderSawGameError(HistoryFitError):
    """A held-out game's frames reached (or would reach) an encoder outside the flagged variant."""


# ---------------------------------------------------------------------------------------------
# Games and action sets
# ---------------------------------------------------------------------------------------------
def game_of(env_id: str) -> str:
    """``ALE/SpaceInvaders-v5`` -> ``SpaceInvaders``."""
    m = _GAME.match(str(env_id))
    if m is None:
        raise HistoryFitError(f"{env_id!r} is not an Atari id ALE/<Game>-v5")
    return m.group(1)


def history_games(h: LearningHistory) -> list[str]:
    """The games of a history's segments, from its metadata (a transplant history has two)."""
    meta = h.metadata or {}
    segs = (meta.get("cli") or {}).get("segments") or meta.get("segments") or []
    ids = [s.get("env") or s.get("env_id") for s in segs] or [meta.get("env_id")]
    if any(i is None for i in ids):
        raise HistoryFitError(f"{h.path or 'history'}: its metadata names no env (an Atari history records env_id)")
    return [game_of(i) for i in ids]


@lru_cache(maxsize=None)
def full_action_map(game: str) -> tuple[int, ...]:
    """Full-set index of each action of ``game``'s minimal action set (ALE's ``getMinimalActionSet``)."""
    e = gym.make(f"ALE/{game}-v5", full_action_space=False, disable_env_checker=True)
    try:
        return tuple(int(getattr(a, "value", a)) for a in e.unwrapped.ale.getMinimalActionSet())
    finally:
        e.close()


def check_frames(h: LearningHistory, frame_size: int = FRAME_SIZE, what: str = "history") -> None:
    """Raise ``AtariFitError`` unless the history stores single uint8 frames of the encoder's size."""
    o = h.obs
    if o.ndim != 3 or tuple(o.shape[1:]) != (frame_size, frame_size) or o.dtype != np.uint8:
        raise AtariFitError(f"{what} {h.path or ''} holds observations {o.dtype}{list(o.shape[1:])}; the encoder takes "
                            f"single uint8 {frame_size}x{frame_size} frames, one per step (envs.atari's protocol)".replace("  ", " "))


def full_set_columns(h: LearningHistory, game: str) -> tuple[np.ndarray, np.ndarray]:
    """``action`` and ``teacher_probs`` on the full 18-action set (views when already full)."""
    A = h.n_actions
    if A == FULL_ACTIONS:
        return h.action, h.teacher_probs
    amap = np.asarray(full_action_map(game), np.int64)
    if A != len(amap):
        raise ActionSetError(f"{h.path or 'history'} has {A} actions; {game} has {len(amap)} (minimal set) or "
                             f"{FULL_ACTIONS} (full set)")
    probs = np.zeros((len(h), FULL_ACTIONS), np.float32)
    probs[:, amap] = np.asarray(h.teacher_probs, np.float32)
    return amap[np.asarray(h.action)], probs


# ---------------------------------------------------------------------------------------------
# Training stores: views over memory-mapped histories
# ---------------------------------------------------------------------------------------------
def open_history(path: str | Path, steps: int | None = None) -> LearningHistory:
    """A complete history (memory-mapped), or the rows a killed recording (``<dir>.partial``)
    has written so far, read-only, with its metadata and weight snapshots; cut to its first
    ``steps`` steps when given."""
    p = Path(path)
    if (p / "manifest.json").exists():
        h = LearningHistory.load(p, verify=False)
    elif (p / "partial.json").exists():
        part = read_json(p / "partial.json", HistoryError)
        h = open_partial(p, int(part["rows"]), int(part["final_obs_rows"]))
        h.metadata = {**dict(load_state(p / CHECKPOINT, mmap=True).get("metadata") or {}),
                      "frames_key": f"partial-{p.name}-{int(part['rows'])}"}
        h.path = p
        h.attach_snapshot_files({int(s["step"]): (s["file"], s["sha256"]) for s in part.get("snapshots", [])})
    else:
        raise HistoryError(f"{p} is not a history (no manifest.json or partial.json)")
    if steps is not None and steps < len(h):
        h = h.truncate(int(steps))
    return h


class ConcatColumn:
    """Row-wise concatenation of arrays (memory maps) without copying; fancy indexing reads
    only the rows asked for."""

    def __init__(self, parts: Sequence[Any]):
        if not parts:
            raise ValueError("no parts")
        self.parts = list(parts)
        self.starts = np.cumsum([0] + [len(p) for p in self.parts]).astype(np.int64)
        self.shape = (int(self.starts[-1]), *self.parts[0].shape[1:])
        self.dtype = np.dtype(self.parts[0].dtype)
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, idx: Any) -> np.ndarray:
        if isinstance(idx, slice):
            idx = np.arange(*idx.indices(len(self)))
        idx = np.asarray(idx, np.int64)
        flat = idx.ravel()
        out = np.empty((len(flat), *self.shape[1:]), self.dtype)
        which = np.searchsorted(self.starts, flat, side="right") - 1
        for p in np.unique(which):
            sel = which == p
            out[sel] = np.asarray(self.parts[p][flat[sel] - self.starts[p]])
        return out.reshape(*idx.shape, *self.shape[1:])


@dataclass
class AtariHistory:
    """One DQN history opened for AD: its game(s) and full-set action columns, optionally cut."""

    history: LearningHistory
    games: list[str]
    action: np.ndarray
    teacher_probs: np.ndarray
    lo: int = 0
    hi: int = 0

    @classmethod
    def open(cls, path: str | Path | LearningHistory, *, first_steps: int | None = None,
             last_episodes: int | None = None) -> "AtariHistory":
        h = path if isinstance(path, LearningHistory) else open_history(path)
        check_frames(h)
        games = history_games(h)
        action, probs = full_set_columns(h, games[0])
        hi = len(h) if first_steps is None else min(len(h), int(first_steps))
        lo = 0
        if last_episodes:
            ep = np.asarray(h.episode[:hi])
            lo = int(np.searchsorted(ep, int(ep[-1]) + 1 - int(last_episodes), side="left"))
        if hi - lo <= 0:
            raise HistoryFitError(f"{h.path or 'history'}: no steps left after cutting")
        return cls(h, games, action, probs, lo, hi)

    def __len__(self) -> int:
        return self.hi - self.lo

    def starts(self) -> np.ndarray:
        """Episode starts (and segment switches) relative to ``lo``."""
        s = episode_starts(self.history)
        s = s[(s >= self.lo) & (s < self.hi)] - self.lo
        return s if len(s) and s[0] == 0 else np.r_[0, s].astype(np.int64)

    def stacks(self, rows: np.ndarray) -> np.ndarray:
        """The DQN's 4-frame stacks at ``rows`` (relative to ``lo``)."""
        return frame_stacks(self.history, np.asarray(rows) + self.lo, FRAME_STACK)

    def key(self) -> str:
        """Identity of the frames (the saved history's obs checksum) for the embedding cache."""
        fk = (self.history.metadata or {}).get("frames_key")
        if fk:
            return f"{fk}-{len(self.history)}"
        if self.history.path is None:
            raise HistoryFitError("an in-memory history has no frame checksum to cache embeddings by; save it first")
        man = read_json(Path(self.history.path) / "manifest.json", HistoryFitError)
        return f"{man['files']['obs']['sha256'][:16]}-{len(self.history)}"


def view_store(hists: Sequence[AtariHistory], obs_parts: Sequence[Any] | None = None, *,
               info: dict[str, Any] | None = None) -> PackedStore:
    """A ``PackedStore`` over ``hists`` without copying: frames (or ``obs_parts``, e.g. cached
    embeddings of the same rows) are memory-mapped views, episode tables are built here."""
    if not hists:
        raise HistoryFitError("no histories")
    obs = ConcatColumn([h.history.obs[h.lo : h.hi] for h in hists] if obs_parts is None else
                       [p[h.lo : h.hi] for p, h in zip(obs_parts, hists)])
    ep_start, ep_len, ep_hist, hist_ep, at = [], [], [], [0], 0
    for i, h in enumerate(hists):
        s = h.starts()
        ep_start.append(at + s)
        ep_len.append(np.diff(np.r_[s, len(h)]))
        ep_hist.append(np.full(len(s), i, np.int32))
        hist_ep.append(hist_ep[-1] + len(s))
        at += len(h)
    manifest = {"format": "hypospace.transformer.atari_view/1", "n_steps": at, "n_histories": len(hists),
                "n_actions": FULL_ACTIONS, "obs_shape": list(obs.shape[1:]), "obs_dtype": obs.dtype.str,
                "obs_range": [None, None], "teacher_probs_known": True, "info": info or {}}
    return PackedStore(path=Path(str(hists[0].history.path or ".")), obs=obs,
                       action=ConcatColumn([h.action[h.lo : h.hi] for h in hists]),
                       reward=ConcatColumn([_sign(h.history.reward[h.lo : h.hi]) for h in hists]),
                       teacher_probs=ConcatColumn([h.teacher_probs[h.lo : h.hi] for h in hists]),
                       ep_start=np.concatenate(ep_start).astype(np.int64), ep_len=np.concatenate(ep_len).astype(np.int32),
                       ep_hist=np.concatenate(ep_hist), hist_ep=np.asarray(hist_ep, np.int64), manifest=manifest)


class _Sign:
    """sign() of a memory-mapped reward column, applied on read."""

    def __init__(self, col: Any):
        self.col, self.shape, self.dtype = col, col.shape, np.dtype(np.float32)

    def __len__(self) -> int:
        return len(self.col)

    def __getitem__(self, idx: Any) -> np.ndarray:
        return np.sign(np.asarray(self.col[idx], np.float32))


def _sign(col: Any) -> _Sign:
    return _Sign(col)


def embedding_parts(hists: Sequence[AtariHistory], encoder: FrozenEncoder, cache_dir: str | Path,
                    progress: bool = False) -> list[np.ndarray]:
    """Cached embeddings of every row of each history (the whole history, cut views index them)."""
    parts = []
    for h in hists:
        full = AtariHistory(h.history, h.games, h.action, h.teacher_probs, 0, len(h.history))
        parts.append(cached_embeddings(encoder, full.key(), len(h.history), full.stacks, cache_dir, progress=progress))
    return parts


# ---------------------------------------------------------------------------------------------
# What a model saw
# ---------------------------------------------------------------------------------------------
@dataclass
class AtariInfo:
    """Stored with every Atari model (``meta.json``'s ``data.atari``)."""

    encoder: str = "frozen_ae"
    encoder_games: list = field(default_factory=list)
    training_games: list = field(default_factory=list)
    action_set: str = ACTION_SET
    encoder_saw_game_variant: bool = False
    encoder_sha256: str | None = None

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> "AtariInfo":
        d = ((meta.get("data") or {}).get("atari"))
        if not isinstance(d, dict):
            raise ActionSetError("the model was not trained on Atari histories (its meta has no data.atari); "
                                 "it cannot act on the full 18-action ALE protocol")
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def check_training_games(games: Sequence[str], encoder_saw_game: bool) -> None:
    """No held-out game enters training (encoder included) outside the flagged variant."""
    bad = sorted(set(games) & set(HELD_OUT_GAMES))
    if bad and not encoder_saw_game:
        raise EncoderSawGameError(f"training data holds frames of held-out game(s) {', '.join(bad)}; that is the "
                                  "'encoder saw the game' variant: pass --encoder-saw-game to run it")


def check_game_for(info: AtariInfo, game: str, *, encoder_saw_game: bool = False) -> None:
    """Refuse to run ``game`` as an unseen-game (transplant) test with a model whose encoder saw
    it, unless the caller asks for the flagged variant."""
    if game in info.encoder_games and not encoder_saw_game and game not in info.training_games:
        raise EncoderSawGameError(f"the model's encoder saw {game} frames (encoder games: {', '.join(info.encoder_games)}); "
                                  f"a {game} run with it is the 'encoder saw the game' variant (pass --encoder-saw-game)")
    if game in HELD_OUT_GAMES and game in info.encoder_games and not encoder_saw_game:
        raise EncoderSawGameError(f"the model's encoder saw {game} frames; a {game} run with it is the "
                                  "'encoder saw the game' variant (pass --encoder-saw-game)")


def check_action_set(model: ADTransformer, info: AtariInfo) -> None:
    if model.cfg.n_actions != FULL_ACTIONS or info.action_set != ACTION_SET:
        raise ActionSetError(f"the model predicts {model.cfg.n_actions} actions ({info.action_set}); the Atari protocol "
                             f"acts on the full {FULL_ACTIONS}-action set ({ACTION_SET})")


# ---------------------------------------------------------------------------------------------
# Training data of one run
# ---------------------------------------------------------------------------------------------
@dataclass
class AtariSpec:
    """Which DQN histories a run trains on and how its frames are encoded."""

    histories: list = field(default_factory=list, metadata={"help": "training history directories"})
    val_history: str = field(default="", metadata={"help": "held-out history directory (validation loss; never trained on)"})
    first_steps: int = field(default=0, metadata={"help": "train only on each history's first N steps (Q2 'beyond' variant; 0 = all)"})
    encoder: str = field(default="frozen_ae", metadata={"help": "frame encoder", "choices": ENCODERS})
    encoder_saw_game: bool = field(default=False, metadata={"help": "the flagged variant in which held-out games' frames may enter training"})
    encoder_from: str = field(default="", metadata={"help": "reuse the frozen encoder of this run (or encoder directory) instead of training one"})

    def __post_init__(self) -> None:
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder {self.encoder!r} is not one of {ENCODERS}")
        if not isinstance(self.histories, list) or not self.histories:
            raise ValueError("atari: name at least one training history (--histories DIR ...)")
        if self.first_steps < 0:
            raise ValueError("first_steps must be >= 0")
        self.histories = [str(h) for h in self.histories]
        if self.val_history and str(self.val_history) in self.histories:
            raise ValueError(f"the validation history {self.val_history} is also a training history")


@dataclass
class AtariData:
    store: PackedStore
    val_store: PackedStore | None
    info: AtariInfo
    encoder: FrozenEncoder | None


def stack_sampler(hists: Sequence[AtariHistory]):
    """``sample(rng, n)`` -> ``[n, 4, 84, 84]`` stacks drawn uniformly over the rows of ``hists``."""
    sizes = np.array([len(h) for h in hists], np.int64)
    cum = np.cumsum(sizes)

    def sample(rng: np.random.Generator, n: int) -> np.ndarray:
        g = np.sort(rng.integers(0, int(cum[-1]), size=n))
        which = np.searchsorted(cum, g, side="right")
        out = np.empty((n, FRAME_STACK, FRAME_SIZE, FRAME_SIZE), np.uint8)
        for i in np.unique(which):
            sel = which == i
            out[sel] = hists[i].stacks(g[sel] - (cum[i] - sizes[i]))
        return out

    return sample


def open_spec(spec: AtariSpec, *, last_episodes: int | None = None) -> tuple[list[AtariHistory], AtariHistory | None]:
    """Open a run's histories (memory maps only) and refuse what does not fit or must not be seen."""
    hists = [AtariHistory.open(p, first_steps=spec.first_steps or None, last_episodes=last_episodes) for p in spec.histories]
    check_training_games(sorted({g for h in hists for g in h.games}), spec.encoder_saw_game)
    val = AtariHistory.open(spec.val_history) if spec.val_history else None
    if val is not None:
        check_training_games(val.games, spec.encoder_saw_game)
    return hists, val


def prepare_atari(spec: AtariSpec, enc_cfg: Any, run_dir: str | Path, cache_dir: str | Path, *,
                  last_episodes: int | None = None, progress: bool = False) -> AtariData:
    """Open the histories (memory maps), refuse what does not fit, train or reuse the frozen
    encoder (``run_dir/encoder``; only the training histories' frames, as cut), cache
    embeddings, and return the training / validation stores and what the model saw."""
    from learners.transformer.frame_encoder import load_frame_encoder, train_frame_encoder

    hists, val = open_spec(spec, last_episodes=last_episodes)
    games = sorted({g for h in hists for g in h.games})
    enc = None
    if spec.encoder == "frozen_ae":
        enc_dir = Path(run_dir) / "encoder"
        if not (enc_dir / "encoder.json").exists() and spec.encoder_from:
            src = Path(spec.encoder_from)
            src = src / "encoder" if (src / "encoder" / "encoder.json").exists() else src
            shared = load_frame_encoder(src)  # checks it before it is copied in
            enc_dir.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(shared.path, enc_dir)
        if (enc_dir / "encoder.json").exists():
            enc = load_frame_encoder(enc_dir)
        else:
            enc = train_frame_encoder(stack_sampler(hists), enc_cfg, enc_dir, games=games, progress=progress,
                                      rows_seen={h.key(): h.hi for h in hists})
        check_training_games(enc.games, spec.encoder_saw_game)
        for h in hists:
            seen = enc.rows_seen.get(h.key())
            if seen is not None and seen > h.hi:
                raise HistoryFitError(f"the encoder saw {h.history.path}'s frames up to step {seen}, past this run's "
                                      f"cut at {h.hi} (a 'beyond' run needs an encoder trained on the cut histories)")
        store = view_store(hists, embedding_parts(hists, enc, cache_dir, progress))
        val_store = view_store([val], embedding_parts([val], enc, cache_dir, progress)) if val is not None else None
    else:
        store = view_store(hists)
        val_store = view_store([val]) if val is not None else None
    info = AtariInfo(encoder=spec.encoder, encoder_games=sorted(enc.games) if enc else games, training_games=games,
                     encoder_saw_game_variant=bool(spec.encoder_saw_game), encoder_sha256=enc.sha256 if enc else None)
    return AtariData(store, val_store, info, enc)


def model_fields(encoder: str, emb_dim: int) -> dict[str, Any]:
    """The model fields the Atari protocol and the encoder choice fix."""
    if encoder == "frozen_ae":
        return {"n_actions": FULL_ACTIONS, "obs_encoder": "vector", "obs_dim": int(emb_dim)}
    return {"n_actions": FULL_ACTIONS, "obs_encoder": "pixels", "frame_stack": FRAME_STACK, "frame_size": FRAME_SIZE}


# ---------------------------------------------------------------------------------------------
# The in-context agent on ALE envs
# ---------------------------------------------------------------------------------------------
class AtariImitator(SampledAgent):
    """A frozen Atari AD model acting in context (KV cache) on ``envs.make("ALE/<Game>-v5")``
    observations (uint8 ``[4, 84, 84]`` stacks, the DQN's own input). With the frozen encoder
    each stack is embedded first (rounded to float16, as the cached training embeddings are)."""

    def __init__(self, model: ADTransformer, info: AtariInfo, encoder: FrozenEncoder | None = None, *,
                 seed: int | None = 0, slide: float = 0.5, device: str = "cpu", use_cache: bool = True):
        check_action_set(model, info)
        if info.encoder == "frozen_ae":
            if encoder is None:
                raise AtariFitError("this model reads frozen-encoder embeddings; load it with its encoder")
            if model.cfg.obs_encoder != "vector" or model.cfg.obs_dim != encoder.emb_dim:
                raise AtariFitError(f"encoder gives {encoder.emb_dim}-d embeddings; the model takes {model.cfg.obs_encoder} "
                                    f"of {model.cfg.obs_dim}")
        self.info, self.encoder = info, encoder
        self.inner = TransformerImitator(model, seed=seed, slide=slide, device=device, use_cache=use_cache)
        self.n_actions = FULL_ACTIONS
        self.rng = self.inner.rng
        self._last: tuple[np.ndarray, np.ndarray] | None = None

    @classmethod
    def load(cls, run_dir: str | Path, **kw: Any) -> "AtariImitator":
        """From an ``experiments.train_transformer --env atari`` run directory (``model/``, ``encoder/``)."""
        from learners.transformer.checkpoint import model_from_checkpoint
        from learners.transformer.frame_encoder import load_frame_encoder

        run = Path(run_dir)
        model, meta = model_from_checkpoint(run / "model", device=str(kw.get("device", "cpu")))
        info = AtariInfo.from_meta(meta)
        enc = load_frame_encoder(run / "encoder") if info.encoder == "frozen_ae" else None
        if enc is not None and info.encoder_sha256 and enc.sha256 != info.encoder_sha256:
            raise AtariFitError(f"{run / 'encoder'} is not the encoder the model was trained with")
        return cls(model, info, enc, **kw)

    def reset(self) -> None:
        self.inner.reset()
        self._last = None

    def token_obs(self, obs: Any) -> np.ndarray:
        o = np.asarray(obs)
        if o.shape != (FRAME_STACK, FRAME_SIZE, FRAME_SIZE) or o.dtype != np.uint8:
            raise AtariFitError(f"observation {o.dtype}{list(o.shape)}; the model takes uint8 "
                                f"[{FRAME_STACK}, {FRAME_SIZE}, {FRAME_SIZE}] stacks (envs.atari's protocol)")
        if self.encoder is None:
            return o
        if self._last is not None and np.array_equal(self._last[0], o):
            return self._last[1]
        e = self.encoder.embed(o[None])[0].astype(np.float16).astype(np.float32)
        self._last = (o.copy(), e)
        return e

    def action_probs(self, obs: Any) -> np.ndarray:
        return self.inner.action_probs(self.token_obs(obs))

    def observe(self, transition: Transition, *, intervention: bool = True) -> None:
        t = transition
        self.inner.observe(Transition(self.token_obs(t.obs), int(t.action), float(np.sign(t.reward)), None,
                                      bool(t.terminated), bool(t.truncated)), intervention=intervention)

    def token_history(self, h: LearningHistory, lo: int, hi: int) -> LearningHistory:
        """Steps ``lo..hi-1`` of a DQN history as this model's tokens: stacks (or their
        embeddings), full-set actions, reward signs; a small in-memory history."""
        check_frames(h)
        ah = AtariHistory.open(h)
        rows = np.arange(lo, hi)
        st = ah.stacks(rows)
        obs = st if self.encoder is None else self.encoder.embed(st).astype(np.float16).astype(np.float32)
        ep = np.asarray(h.episode[lo:hi])
        return LearningHistory.from_arrays(obs=obs, action=np.asarray(ah.action[lo:hi]),
                                           reward=np.sign(np.asarray(h.reward[lo:hi], np.float64)),
                                           terminated=np.asarray(h.terminated[lo:hi]), truncated=np.asarray(h.truncated[lo:hi]),
                                           episode=ep - ep[0], teacher_probs=np.asarray(ah.teacher_probs[lo:hi], np.float64))

    def condition(self, h: LearningHistory, T: int) -> None:
        """Show the model the last ``context`` steps of ``h`` before ``T`` (from an episode start),
        teacher-forced; it then acts on its own from there."""
        C = self.inner.cfg.context
        starts = episode_starts(h)
        lo = int(starts[np.searchsorted(starts, max(0, T - C), side="left")]) if T > C else 0
        lo = min(lo, max(0, T - 1))
        self.reset()
        if T > 0:
            self.inner.observe_history(self.token_history(h, lo, T))

    def predict(self, h: LearningHistory, lo: int, hi: int) -> np.ndarray:
        """``[hi-lo, 18]`` teacher-forced predictions along steps lo..hi-1 from an empty context."""
        return self.inner.predict_history(self.token_history(h, lo, hi))


__all__ = ["ENCODERS", "HELD_OUT_GAMES", "ACTION_SET", "AtariFitError", "ActionSetError", "EncoderSawGameError",
           "game_of", "history_games", "full_action_map", "check_frames", "full_set_columns", "ConcatColumn",
           "AtariHistory", "open_history", "view_store", "embedding_parts", "AtariInfo", "check_training_games", "check_game_for",
           "check_action_set", "AtariImitator", "AtariSpec", "AtariData", "open_spec", "prepare_atari", "stack_sampler",
           "model_fields"]
