"""Tokenization and training data: many learning histories packed into memory-mapped arrays,
sampled as windows of whole episodes (optionally every k-th episode, as in Algorithm Distillation).

A *packed store* is a directory of ``.npy`` columns concatenating many ``LearningHistory`` runs
(``obs``, ``action``, ``reward``, ``teacher_probs``) plus an episode table (``ep_start``,
``ep_len``, ``ep_hist``) and a per-history episode range (``hist_ep``). It is written to
``<dir>.partial`` and renamed when complete, opened with ``np.load(mmap_mode="r")``, so a store
larger than memory streams. Pixel frames are stored once; a stack is rebuilt at sampling time
from the frames before it in the same episode.

A *window* is the token sequence of episodes ``e0, e0+k, e0+2k, ...`` of one history, cut at
the context length ``K`` (``k`` = ``subsample``). Inside a window the "previous action/reward"
of a token is the previous token's (so the first step of an included episode sees the last step
of the episode included before it, exactly as in closed-loop acting, where the context holds the
agent's own consecutive episodes); the first token of a window sees "none". A model trained on
windows with ``k > 1`` sees k teacher episodes of progress per context episode, which is why AD
can improve faster in context than its source algorithm.

``WindowSampler.batch(step)`` is a pure function of ``(seed, step)``: the sampler's position is
the step, so a resumed run draws the very same batches, and every DDP rank can draw the global
batch and take its own rows.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from learners.files import read_json, sha256_file
from learners.history import LearningHistory
from learners.interop.unknown_probs import teacher_probs_known
from learners.transformer.model import Tokens

PACK_FORMAT = "hypospace.transformer.packed/1"
PACK_COLUMNS = ("obs", "action", "reward", "teacher_probs", "ep_start", "ep_len", "ep_hist", "hist_ep")


class DataError(ValueError):
    """Training data that cannot be used (empty, inconsistent with the model, corrupt)."""


# ---------------------------------------------------------------------------------------------
# Tokens of one contiguous stretch of steps (the agent and teacher-forced evaluation use this)
# ---------------------------------------------------------------------------------------------
def contiguous_tokens(obs: np.ndarray, action: np.ndarray, reward: np.ndarray, first: np.ndarray,
                      *, n_actions: int, prev_action0: int | None = None, prev_reward0: float = 0.0) -> Tokens:
    """Tokens ``[1, T]`` of consecutive steps; the first token's previous action is ``prev_action0``
    (default "none" = ``n_actions``)."""
    T = len(action)
    pa = np.empty(T, np.int64)
    pr = np.empty(T, np.float32)
    pa[0] = n_actions if prev_action0 is None else prev_action0
    pr[0] = prev_reward0
    pa[1:] = action[:-1]
    pr[1:] = reward[:-1]
    return Tokens(
        obs=torch.from_numpy(np.ascontiguousarray(obs))[None],
        prev_action=torch.from_numpy(pa)[None],
        prev_reward=torch.from_numpy(pr)[None],
        first=torch.from_numpy(np.asarray(first, bool))[None],
    )


def episode_first(episode: np.ndarray) -> np.ndarray:
    """``first[t]``: step t is the first of its episode."""
    ep = np.asarray(episode)
    return np.r_[True, ep[1:] != ep[:-1]] if len(ep) else np.zeros(0, bool)


# ---------------------------------------------------------------------------------------------
# The packed store
# ---------------------------------------------------------------------------------------------
def _compact_obs_dtype(obs_dtype: np.dtype, lo: float, hi: float) -> np.dtype:
    if obs_dtype.kind in "iu":
        for dt in (np.uint8, np.int16, np.int32):
            info = np.iinfo(dt)
            if info.min <= lo and hi <= info.max:
                return np.dtype(dt)
        return np.dtype(np.int64)
    return np.dtype(np.float32)


def pack_histories(histories: Sequence[LearningHistory | str | os.PathLike], out: str | os.PathLike, *,
                   info: dict[str, Any] | None = None, last_episodes: int | None = None,
                   overwrite: bool = False) -> Path:
    """Concatenate histories (objects, or directories opened one at a time so thousands of
    them never hold thousands of open files) into a packed store at ``out``, atomically.

    ``last_episodes`` keeps only the final N episodes of each history (expert distillation:
    the teacher's final policy, without the learning that led to it)."""
    out = Path(out)
    part = out.with_name(out.name + ".partial")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists")
    if not histories:
        raise DataError("no histories to pack")
    if part.exists():
        shutil.rmtree(part)
    part.mkdir(parents=True)

    def get(i: int) -> LearningHistory:
        h = histories[i]
        return h if isinstance(h, LearningHistory) else LearningHistory.load(h, verify=False)

    def first_kept(h: LearningHistory) -> int:
        if last_episodes is None:
            return 0
        return int(np.searchsorted(np.asarray(h.episode), h.n_episodes - int(last_episodes), side="left"))

    try:
        # Pass 1: sizes, action space, observation range.
        h0 = get(0)
        A, obs_shape, obs_kind = h0.n_actions, h0.obs.shape[1:], h0.obs.dtype
        del h0
        lo, hi = np.inf, -np.inf
        starts, lengths = [], []
        probs_known = True
        for i in range(len(histories)):
            h = get(i)
            # A history imported with only its actions holds placeholder probabilities: the store
            # says so, and a KL-to-teacher loss refuses it (training).
            probs_known = probs_known and teacher_probs_known(h)
            if h.n_actions != A:
                raise DataError(f"history {i} has {h.n_actions} actions, history 0 has {A}")
            if h.obs.shape[1:] != obs_shape:
                raise DataError(f"history {i} has observations of shape {h.obs.shape[1:]}, history 0 {obs_shape}")
            s0 = first_kept(h)
            if len(h) - s0 <= 0:
                raise DataError(f"history {i} is empty")
            if h.obs.dtype.kind in "iu":
                o = np.asarray(h.obs[s0:])
                lo, hi = min(lo, float(o.min())), max(hi, float(o.max()))
            starts.append(s0)
            lengths.append(len(h) - s0)
            del h
        N = int(sum(lengths))
        obs_dt = _compact_obs_dtype(obs_kind, lo, hi)
        cols = {
            "obs": np.lib.format.open_memmap(part / "obs.npy", "w+", obs_dt, (N, *obs_shape)),
            "action": np.lib.format.open_memmap(part / "action.npy", "w+", np.int16, (N,)),
            "reward": np.lib.format.open_memmap(part / "reward.npy", "w+", np.float32, (N,)),
            "teacher_probs": np.lib.format.open_memmap(part / "teacher_probs.npy", "w+", np.float32, (N, A)),
        }
        # Pass 2: copy.
        ep_start, ep_len, ep_hist, hist_ep = [], [], [], [0]
        at = 0
        for i, (s0, n) in enumerate(zip(starts, lengths)):
            h = get(i)
            cols["obs"][at : at + n] = np.asarray(h.obs[s0:]).astype(obs_dt, copy=False)
            cols["action"][at : at + n] = np.asarray(h.action[s0:])
            cols["reward"][at : at + n] = np.asarray(h.reward[s0:])
            cols["teacher_probs"][at : at + n] = np.asarray(h.teacher_probs[s0:])
            first = np.flatnonzero(episode_first(np.asarray(h.episode[s0:])))
            del h
            ep_start.append(at + first)
            ep_len.append(np.diff(np.r_[first, n]))
            ep_hist.append(np.full(len(first), i, np.int32))
            hist_ep.append(hist_ep[-1] + len(first))
            at += n
        for c in cols.values():
            c.flush()
        del cols
        extra = {
            "ep_start": np.concatenate(ep_start).astype(np.int64),
            "ep_len": np.concatenate(ep_len).astype(np.int32),
            "ep_hist": np.concatenate(ep_hist),
            "hist_ep": np.asarray(hist_ep, np.int64),
        }
        for k, v in extra.items():
            np.save(part / f"{k}.npy", v, allow_pickle=False)
        manifest = {
            "format": PACK_FORMAT, "n_steps": N, "n_histories": len(histories), "n_actions": int(A),
            "obs_shape": list(obs_shape), "obs_dtype": obs_dt.str,
            "obs_range": [None if not np.isfinite(lo) else lo, None if not np.isfinite(hi) else hi],
            "last_episodes": last_episodes,
            "teacher_probs_known": probs_known,
            "sha256": {c: sha256_file(part / f"{c}.npy") for c in PACK_COLUMNS},
            "info": info or {},
        }
        (part / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True, default=str))
        if out.exists():
            shutil.rmtree(out)
        os.rename(part, out)
        return out
    except BaseException:
        shutil.rmtree(part, ignore_errors=True)
        raise


@dataclass
class PackedStore:
    """A packed store opened as memory maps (see ``pack_histories``)."""

    path: Path
    obs: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    teacher_probs: np.ndarray
    ep_start: np.ndarray
    ep_len: np.ndarray
    ep_hist: np.ndarray
    hist_ep: np.ndarray
    manifest: dict[str, Any]

    @classmethod
    def open(cls, path: str | os.PathLike, *, verify: bool = False) -> "PackedStore":
        p = Path(path)
        mpath = p / "manifest.json"
        m = read_json(mpath, DataError, missing=f"{p}: not a packed store (manifest.json missing)")
        if m.get("format") != PACK_FORMAT:
            raise DataError(f"{mpath}: format {m.get('format')!r}, expected {PACK_FORMAT!r}")
        arrs = {}
        for c in PACK_COLUMNS:
            f = p / f"{c}.npy"
            if not f.exists():
                raise DataError(f"{f}: missing")
            if verify and sha256_file(f) != m["sha256"][c]:
                raise DataError(f"{f}: sha256 does not match the manifest")
            try:
                arrs[c] = np.load(f, mmap_mode="r", allow_pickle=False)
            except ValueError as e:
                raise DataError(f"{f}: unreadable ({e})") from None
        s = cls(path=p, manifest=m, **arrs)
        if len(s.action) != m["n_steps"] or len(s.hist_ep) != m["n_histories"] + 1:
            raise DataError(f"{p}: column lengths do not match the manifest")
        # The small tables are read once into memory (they are indexed on every batch).
        s.ep_start, s.ep_len, s.ep_hist, s.hist_ep = (np.array(a) for a in (s.ep_start, s.ep_len, s.ep_hist, s.hist_ep))
        return s

    @property
    def n_actions(self) -> int:
        return int(self.manifest["n_actions"])

    @property
    def n_histories(self) -> int:
        return int(self.manifest["n_histories"])

    def __len__(self) -> int:
        return int(self.manifest["n_steps"])


# ---------------------------------------------------------------------------------------------
# Windows
# ---------------------------------------------------------------------------------------------
@dataclass
class Batch:
    tokens: Tokens
    target: torch.Tensor         # [B, K] int64: the teacher's action at each token
    teacher_probs: torch.Tensor  # [B, K, A] float32
    mask: torch.Tensor           # [B, K] bool: real tokens (False = padding past a history's end)

    def to(self, device: Any) -> "Batch":
        return Batch(self.tokens.to(device), self.target.to(device), self.teacher_probs.to(device), self.mask.to(device))


class WindowSampler:
    """Draws batches of windows from a packed store; ``batch(step)`` depends only on ``(seed, step)``.

    ``subsample`` is a tuple of strides k; each window draws one uniformly. Histories are drawn
    uniformly, then a start episode uniformly among those whose window fits inside the history
    (with variable-length episodes "fits" uses the history's mean episode length; a window that
    runs past the end is padded and masked). ``frame_stack`` > 1 rebuilds observation stacks
    from single stored frames (earlier frames of the same episode; the first frame repeated at
    an episode start)."""

    def __init__(self, store: PackedStore, *, context: int, subsample: Sequence[int] = (1,),
                 seed: int = 0, frame_stack: int = 1):
        if context < 1:
            raise DataError("context must be positive")
        ks = tuple(int(k) for k in subsample)
        if not ks or min(ks) < 1:
            raise DataError(f"subsample strides must be >= 1, got {subsample}")
        self.store, self.K, self.ks, self.seed, self.frame_stack = store, int(context), ks, int(seed), int(frame_stack)
        n_eps = np.diff(store.hist_ep)
        steps = np.array([store.ep_len[store.hist_ep[h] : store.hist_ep[h + 1]].sum() for h in range(store.n_histories)])
        mean_len = steps / np.maximum(n_eps, 1)
        self.n_eps = n_eps
        # Episodes a full window spans, per history; the last start whose window fits, per stride.
        self.win_eps = np.ceil(self.K / mean_len).astype(np.int64)
        self.max_start = np.stack([np.maximum(0, n_eps - 1 - (self.win_eps - 1) * k) for k in ks], 1)  # [H, len(ks)]
        self.j_max = int(np.ceil(self.K / max(1, int(store.ep_len.min())))) + 1

    def rng(self, step: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence([self.seed, 0x5A4D, int(step)]))

    def indices(self, step: int, batch: int) -> tuple[np.ndarray, np.ndarray]:
        """Step indices ``[B, K]`` into the store and the mask of real tokens, for global batch ``step``."""
        s = self.store
        rng = self.rng(step)
        h = rng.integers(0, s.n_histories, size=batch)
        ki = rng.integers(0, len(self.ks), size=batch)
        k = np.asarray(self.ks)[ki]
        e0 = (rng.random(batch) * (self.max_start[h, ki] + 1)).astype(np.int64)
        j = np.arange(self.j_max)
        eps = e0[:, None] + k[:, None] * j[None, :]  # [B, J] episode index within its history
        valid = eps < self.n_eps[h][:, None]
        gid = np.where(valid, s.hist_ep[h][:, None] + eps, 0)
        lens = np.where(valid, s.ep_len[gid], 0).astype(np.int64)
        cum = np.cumsum(lens, axis=1)  # [B, J]
        p = np.arange(self.K)
        # Episode slot of every position: searchsorted per row, vectorised with row offsets.
        big = int(cum[:, -1].max()) + self.K + 1
        flat = (cum + big * np.arange(batch)[:, None]).ravel()
        slot = np.searchsorted(flat, (p[None, :] + big * np.arange(batch)[:, None]).ravel(), side="right").reshape(batch, self.K)
        slot -= self.j_max * np.arange(batch)[:, None]
        mask = p[None, :] < cum[:, -1][:, None]
        slot = np.minimum(slot, self.j_max - 1)
        before = np.where(slot > 0, np.take_along_axis(cum, np.maximum(slot - 1, 0), 1), 0)
        offset = p[None, :] - before
        idx = s.ep_start[np.take_along_axis(gid, slot, 1)] + offset
        idx = np.where(mask, idx, 0)
        return idx, mask

    def batch(self, step: int, batch: int, rows: slice | None = None) -> Batch:
        """The global batch ``step`` (``batch`` windows), or only ``rows`` of it (a DDP rank's share)."""
        idx, mask = self.indices(step, batch)
        if rows is not None:
            idx, mask = idx[rows], mask[rows]
        return self.gather(idx, mask)

    def gather(self, idx: np.ndarray, mask: np.ndarray) -> Batch:
        s = self.store
        B, K = idx.shape
        flat = idx.ravel()
        order = np.argsort(flat, kind="stable")  # sorted reads are kinder to a memory map
        inv = np.empty_like(order)
        inv[order] = np.arange(len(order))
        def take(col: np.ndarray) -> np.ndarray:
            return np.asarray(col[flat[order]])[inv].reshape(B, K, *col.shape[1:])
        action = take(s.action).astype(np.int64)
        reward = take(s.reward).astype(np.float32)
        probs = take(s.teacher_probs).astype(np.float32)
        # first[t]: the token starts an episode (its index is an episode start in the store).
        first = _is_episode_start(idx, s.ep_start)
        if self.frame_stack > 1:
            obs = self._stacked_obs(idx, first)
        else:
            obs = take(s.obs)
        obs = obs.astype(np.int64) if obs.dtype.kind in "iu" and obs.ndim == 2 else obs
        pa = np.empty((B, K), np.int64)
        pr = np.zeros((B, K), np.float32)
        pa[:, 0] = s.n_actions
        pa[:, 1:] = action[:, :-1]
        pr[:, 1:] = reward[:, :-1]
        m = torch.from_numpy(mask)
        return Batch(
            tokens=Tokens(torch.from_numpy(np.ascontiguousarray(obs)), torch.from_numpy(pa), torch.from_numpy(pr),
                          torch.from_numpy(first & mask)),
            target=torch.from_numpy(action),
            teacher_probs=torch.from_numpy(probs),
            mask=m,
        )

    def _stacked_obs(self, idx: np.ndarray, first: np.ndarray) -> np.ndarray:
        """Frame stacks rebuilt from single frames: frame t-j of the same episode, clamped at its start."""
        s = self.store
        # The start of the episode holding each index: the largest ep_start <= idx.
        ep_of = np.searchsorted(s.ep_start, idx, side="right") - 1
        start = s.ep_start[ep_of]
        lag = np.arange(self.frame_stack - 1, -1, -1)
        src = np.maximum(idx[..., None] - lag, start[..., None])  # [B, K, S]
        uniq, pos = np.unique(src.ravel(), return_inverse=True)
        return np.asarray(s.obs[uniq])[pos].reshape(*src.shape, *s.obs.shape[1:])


def _is_episode_start(idx: np.ndarray, ep_start: np.ndarray) -> np.ndarray:
    j = np.searchsorted(ep_start, idx)
    j = np.minimum(j, len(ep_start) - 1)
    return ep_start[j] == idx


__all__ = ["pack_histories", "PackedStore", "WindowSampler", "Batch", "contiguous_tokens", "episode_first", "DataError"]
