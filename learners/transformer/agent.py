"""``TransformerImitator``: a frozen AD transformer acting in context, one step at a time.

The context is the stream of tokens of the steps seen so far (``model.py`` describes a token).
``action_probs(obs)`` runs only the new token through the model against a key/value cache of
the earlier ones, so a step costs the same whatever the history length, up to the model's
context window. When the window is full the context *slides*: the oldest tokens are dropped
back to an episode boundary (at least ``slide`` of the window), the first kept token gets the
"none" previous action — exactly like the first token of a training window — and the cache is
rebuilt from the kept tokens in one forward pass. The rebuild costs about one window forward
every ``slide * context`` steps, so the per-step cost stays constant on average.

Own actions and the intervention rule. The Solomonoff mixture (``learners.solomonoff``) treats
an action it chose itself as an *intervention*: it advances every hypothesis's program state
(value tables learn from the transition the action caused) but never reweights its beliefs
about the teacher by it. A transformer has no separate belief to protect: its context is its
whole state, and Algorithm Distillation acts by appending its *own* steps to that context, as
if the teacher had taken them — that is how it improves in context. So ``observe`` appends the
step whether ``intervention`` is True (closed loop) or False (teacher-forced); the flag only
says who chose the action. The cost of this rule is known (self-delusion in sequence models,
Ortega et al. 2021): the model may read its own sampled actions as evidence about the task. The
difference from the mixture is by design and is measured, not hidden, in the experiments.

``predict_history(history)`` is the fast path of teacher-forced evaluation: the same context
schedule as the step loop, but whole chunks of tokens per forward pass.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from learners.errors import HistoryFitError
from learners.history import LearningHistory
from learners.protocols import SampledAgent, Transition
from learners.transformer.data import episode_first
from learners.transformer.model import ADTransformer, KVCache, Tokens


def slide_cut(first: np.ndarray, slide_tokens: int) -> int:
    """How many of the oldest context tokens to drop when the window is full: at least
    ``slide_tokens``, then on to the next episode start (``first``), if one is left; the kept
    tokens then begin an episode, like every training window."""
    n = len(first)
    keep_max = n - slide_tokens
    if keep_max <= 0:
        return n
    starts = np.flatnonzero(first[n - keep_max :])
    return n - keep_max + int(starts[0]) if len(starts) else n - keep_max


class TransformerImitator(SampledAgent):
    """The Imitator protocol over a frozen ``ADTransformer`` (see the module docstring).

    ``use_cache=False`` recomputes the whole context at every step (the reference the KV cache
    is benchmarked against; same probabilities up to float rounding)."""

    def __init__(self, model: ADTransformer, *, seed: int | None = 0, slide: float = 0.5, use_cache: bool = True,
                 device: str | torch.device = "cpu", temperature: float = 1.0):
        if not 0.0 < slide <= 1.0:
            raise ValueError(f"slide must be in (0, 1], got {slide}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.model = model.to(device).eval()
        self.cfg = model.cfg
        self.n_actions = int(self.cfg.n_actions)
        self.device = torch.device(device)
        self.rng = np.random.default_rng(seed)
        self.slide_tokens = max(1, int(round(slide * self.cfg.context)))
        self.use_cache = use_cache
        self.temperature = float(temperature)
        self.reset()

    @classmethod
    def load(cls, directory: str, **kw: Any) -> "TransformerImitator":
        """From a training run's ``model/`` directory or any checkpoint directory."""
        from learners.transformer.checkpoint import model_from_checkpoint

        model, _ = model_from_checkpoint(directory, device=str(kw.get("device", "cpu")))
        return cls(model, **kw)

    # -- context -------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the context (a new run)."""
        C = self.cfg.context
        self._obs: list[Any] = []   # token inputs of the context, oldest first
        self._pa: list[int] = []
        self._pr: list[float] = []
        self._first: list[bool] = []
        self._prev_action = self.n_actions  # "none"
        self._prev_reward = 0.0
        self._next_first = True
        self._frames: list[np.ndarray] = []
        self.cache = KVCache.empty(self.cfg, 1, self.device) if self.use_cache else None
        self._pending: tuple[Any, np.ndarray] | None = None
        self._C = C

    @property
    def context_length(self) -> int:
        return len(self._pa)

    def _obs_token(self, obs: Any) -> np.ndarray:
        cfg = self.cfg
        if cfg.obs_encoder in ("table", "grid"):
            o = np.asarray(obs)
            if o.size != 1 or o.dtype.kind not in "iub":
                raise HistoryFitError(f"observation {obs!r} is not a single discrete value (the model's {cfg.obs_encoder} encoder)")
            v = int(o.reshape(()))
            if not 0 <= v < cfg.obs_n:
                raise HistoryFitError(f"observation {v} is outside the model's 0..{cfg.obs_n - 1}")
            return np.asarray(v, np.int64)
        if cfg.obs_encoder == "vector":
            o = np.asarray(obs, np.float32).reshape(-1)
            if o.shape[0] != cfg.obs_dim:
                raise HistoryFitError(f"observation of length {o.shape[0]}; the model takes {cfg.obs_dim}")
            return o
        o = np.asarray(obs, np.uint8)
        S, H = cfg.frame_stack, cfg.frame_size
        if o.shape == (S, H, H):
            return o
        if o.shape != (H, H):
            raise HistoryFitError(f"frame of shape {o.shape}; the model takes ({H}, {H}) frames or ({S}, {H}, {H}) stacks")
        fr = (self._frames if not self._next_first else []) + [o]
        fr = fr[-S:]
        return np.stack([fr[0]] * (S - len(fr)) + fr)

    def _tokens(self, lo: int, hi: int, extra: tuple[Any, int, float, bool] | None = None) -> Tokens:
        obs = self._obs[lo:hi] + ([extra[0]] if extra else [])
        pa = self._pa[lo:hi] + ([extra[1]] if extra else [])
        pr = self._pr[lo:hi] + ([extra[2]] if extra else [])
        first = self._first[lo:hi] + ([extra[3]] if extra else [])
        return Tokens(
            obs=torch.from_numpy(np.stack(obs))[None].to(self.device),
            prev_action=torch.tensor([pa], dtype=torch.int64, device=self.device),
            prev_reward=torch.tensor([pr], dtype=torch.float32, device=self.device),
            first=torch.tensor([first], dtype=torch.bool, device=self.device),
        )

    def _slide(self) -> None:
        """Drop the oldest tokens back to an episode boundary and rebuild the cache."""
        cut = slide_cut(np.asarray(self._first, bool), self.slide_tokens)
        for lst in (self._obs, self._pa, self._pr, self._first):
            del lst[:cut]
        if self._pa:
            self._pa[0] = self.n_actions  # like the first token of a training window
            self._pr[0] = 0.0
        if self.cache is not None:
            self.cache.length = 0
            if self._pa:
                with torch.no_grad():
                    self.model(self._tokens(0, len(self._pa)), cache=self.cache)

    def _probs_of(self, logits: torch.Tensor) -> np.ndarray:
        p = torch.softmax(logits.double() / self.temperature, dim=-1).cpu().numpy()
        return p / p.sum()

    @torch.no_grad()
    def _compute(self, tok_obs: np.ndarray) -> np.ndarray:
        if len(self._pa) >= self._C:
            self._slide()
        first = self._next_first
        pa, pr = (self.n_actions, 0.0) if not self._pa else (self._prev_action, self._prev_reward)
        extra = (tok_obs, pa, pr, first)
        if self.cache is not None:
            L = self.cache.length
            logits = self.model(self._tokens(0, 0, extra), cache=self.cache)[0, -1]
            self.cache.length = L  # pure: the slot is overwritten unless observe() commits it
        else:
            logits = self.model(self._tokens(0, len(self._pa), extra))[0, -1]
        return self._probs_of(logits)

    # -- the Imitator protocol -----------------------------------------------------------------
    def action_probs(self, obs: Any) -> np.ndarray:
        tok = self._obs_token(obs)
        if self._pending is not None and np.array_equal(self._pending[0], tok):
            return self._pending[1].copy()
        p = self._compute(tok)
        self._pending = (tok, p)
        return p.copy()

    def observe(self, transition: Transition, *, intervention: bool = True) -> None:
        """Append the step to the context (own or teacher's action alike; see the module docstring)."""
        a = int(transition.action)
        if not 0 <= a < self.n_actions:
            raise HistoryFitError(f"action {a} is outside the model's {self.n_actions} actions")
        tok = self._obs_token(transition.obs)
        if self._pending is None or not np.array_equal(self._pending[0], tok):
            self._compute(tok)  # fills the cache slot of this token
        pa, pr = (self.n_actions, 0.0) if not self._pa else (self._prev_action, self._prev_reward)
        if self.cache is not None:
            self.cache.length += 1
        self._obs.append(tok)
        self._pa.append(pa)
        self._pr.append(pr)
        self._first.append(self._next_first)
        if self.cfg.obs_encoder == "pixels":
            o = np.asarray(transition.obs, np.uint8)
            self._frames = [] if self._next_first else self._frames
            self._frames = (self._frames + [o if o.ndim == 2 else o[-1]])[-self.cfg.frame_stack:]
        self._prev_action, self._prev_reward = a, float(transition.reward)
        self._next_first = bool(transition.terminated or transition.truncated)
        self._pending = None

    @torch.no_grad()
    def observe_history(self, history: LearningHistory) -> None:
        """Show the imitator a whole history (teacher-forced), as ``observe(..., intervention=False)``
        step by step would, but with one forward pass: the context ends exactly as the step
        loop leaves it (same slides), and the cache is rebuilt from it. This is how a frozen
        imitator is conditioned on a teacher's history truncated at step T before it acts."""
        self.check_history(history)
        T = len(history)
        if T == 0:
            return
        obs = np.asarray(history.obs)
        first_all = episode_first(np.asarray(history.episode))
        if self.cfg.obs_encoder == "pixels" and obs.ndim == 3:
            obs = _stack_frames(obs, first_all, self.cfg.frame_stack)
        act = np.asarray(history.action, np.int64)
        rew = np.asarray(history.reward, np.float64)
        done = np.asarray(history.terminated) | np.asarray(history.truncated)
        C = self._C
        for t in range(T):
            if len(self._pa) >= C:
                cut = slide_cut(np.asarray(self._first, bool), self.slide_tokens)
                for lst in (self._obs, self._pa, self._pr, self._first):
                    del lst[:cut]
                if self._pa:
                    self._pa[0], self._pr[0] = self.n_actions, 0.0
            empty = not self._pa
            self._obs.append(self._obs_token(obs[t]) if self.cfg.obs_encoder != "pixels" else np.asarray(obs[t], np.uint8))
            self._pa.append(self.n_actions if empty else self._prev_action)
            self._pr.append(0.0 if empty else self._prev_reward)
            self._first.append(self._next_first)
            self._prev_action, self._prev_reward = int(act[t]), float(rew[t])
            self._next_first = bool(done[t])
        if self.cfg.obs_encoder == "pixels":
            ep_start = int(np.flatnonzero(first_all)[-1])
            raw = np.asarray(history.obs[max(ep_start, T - self.cfg.frame_stack):])
            self._frames = [] if self._next_first else [f if f.ndim == 2 else f[-1] for f in raw]
        self._pending = None
        if self.cache is not None:
            self.cache.length = 0
            self.model(self._tokens(0, len(self._pa)), cache=self.cache)

    # -- teacher-forced fast path --------------------------------------------------------------
    def check_history(self, history: LearningHistory) -> None:
        """Raise ``HistoryFitError`` if the history's actions or observations do not fit the model."""
        if history.n_actions != self.n_actions:
            raise HistoryFitError(f"history has {history.n_actions} actions; the model predicts {self.n_actions}")
        cfg = self.cfg
        if cfg.obs_encoder in ("table", "grid") and len(history):
            o = np.asarray(history.obs)
            if o.ndim != 1 or o.dtype.kind not in "iub":
                raise HistoryFitError(f"history observations {o.dtype}{list(o.shape[1:])} are not discrete; the model's encoder is {cfg.obs_encoder}")
            if o.min() < 0 or o.max() >= cfg.obs_n:
                raise HistoryFitError(f"history observations span [{o.min()}, {o.max()}]; the model takes 0..{cfg.obs_n - 1}")

    @torch.no_grad()
    def predict_history(self, history: LearningHistory) -> np.ndarray:
        """``[T, A]``: ``action_probs`` before each step of ``history`` when shown the history step by
        step from a fresh context — the same context schedule as the step loop, in chunks.

        Does not touch this agent's own context."""
        self.check_history(history)
        T = len(history)
        out = np.empty((T, self.n_actions))
        if T == 0:
            return out
        obs = np.asarray(history.obs)
        if self.cfg.obs_encoder in ("table", "grid"):
            obs = obs.astype(np.int64)
        act = np.asarray(history.action, np.int64)
        rew = np.asarray(history.reward, np.float32)
        first_all = episode_first(np.asarray(history.episode))
        if self.cfg.obs_encoder == "pixels" and obs.ndim == 3:
            obs = _stack_frames(obs, first_all, self.cfg.frame_stack)
        C = self.cfg.context
        cache = KVCache.empty(self.cfg, 1, self.device)
        lo = 0  # history index of the first token in the context
        t = 0
        while t < T:
            if t - lo >= C:
                lo += slide_cut(first_all[lo:t], self.slide_tokens)  # exactly as the step loop slides
                cache.length = 0
                if t > lo:
                    self.model(self._hist_tokens(obs, act, rew, first_all, lo, t, lo), cache=cache)
            n = min(C - (t - lo), T - t)
            logits = self.model(self._hist_tokens(obs, act, rew, first_all, t, t + n, lo), cache=cache)[0]
            out[t : t + n] = torch.softmax(logits.double() / self.temperature, dim=-1).cpu().numpy()
            t += n
        return out / out.sum(1, keepdims=True)

    def _hist_tokens(self, obs, act, rew, first, a: int, b: int, lo: int) -> Tokens:
        pa = np.empty(b - a, np.int64)
        pr = np.empty(b - a, np.float32)
        idx = np.arange(a, b)
        pa[:] = np.where(idx > lo, act[np.maximum(idx - 1, 0)], self.n_actions)
        pr[:] = np.where(idx > lo, rew[np.maximum(idx - 1, 0)], 0.0)
        return Tokens(
            obs=torch.from_numpy(np.ascontiguousarray(obs[a:b]))[None].to(self.device),
            prev_action=torch.from_numpy(pa)[None].to(self.device),
            prev_reward=torch.from_numpy(pr)[None].to(self.device),
            first=torch.from_numpy(np.asarray(first[a:b]))[None].to(self.device),
        )


def _stack_frames(frames: np.ndarray, first: np.ndarray, S: int) -> np.ndarray:
    """[T, H, W] single frames -> [T, S, H, W] stacks (earlier frames of the same episode)."""
    T = len(frames)
    start = np.maximum.accumulate(np.where(first, np.arange(T), 0))
    lag = np.arange(S - 1, -1, -1)
    src = np.maximum(np.arange(T)[:, None] - lag, start[:, None])
    return frames[src]


__all__ = ["TransformerImitator", "HistoryFitError", "slide_cut"]
