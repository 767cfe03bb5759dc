"""Uniform experience replay that stores each frame once and rebuilds frame stacks by index.

A stacked Atari observation is 4 frames of 84x84 uint8; storing stacks (and next stacks) for
10^6 transitions would take ~28 GB. Here every step ``t`` stores only the newest
frame of ``obs[t]`` in slot ``t % slots``; the stack of ``obs[t]`` is rows ``t-k+1 .. t``
clamped to the first row of its episode (gymnasium's ``FrameStackObservation`` pads a new
episode with its reset frame, which is exactly what the clamp reproduces), and the stack of
``next_obs[t]`` is the same window shifted by one. So one gather of ``k + 1`` frames per sample
yields both stacks. The frame after a step that *did not end* the episode is the newest frame of
``next_obs`` and is written as soon as that step is added (so the newest transition is
sampleable); the final frame of a step that ended the episode by **truncation** (a time limit,
or a task switch that cut the episode: ``cut()``) is kept on the side, because the next slot
holds the next episode's reset frame. Terminal steps never bootstrap, so their successor
frame is not needed (the sampler returns an arbitrary frame there and a ``terminated`` mask).

Observations without a stack (a vector, a Discrete index) are the ``k = 1`` case of the same
rule. Memory for capacity ``N`` and frame bytes ``F``: ``(N + k) F`` plus ~26 bytes per slot.

The buffer content is a function of the recorded history (the last ``N`` rows of its ``obs``,
``action``, ``reward``, ``terminated``, ``truncated``, episode and segment columns plus the
final observations of truncated steps): ``state(history_backed=True)`` leaves those out of a
checkpoint and ``load_state(..., history=...)`` rebuilds them from the history's memory maps.
"""
from __future__ import annotations

from typing import Any

import numpy as np


class FrameReplay:
    """Replay of the last ``capacity`` transitions; see the module docstring."""

    def __init__(self, capacity: int, frame_shape: tuple[int, ...], frame_dtype: Any, stack: int):
        if capacity < 1:
            raise ValueError(f"replay capacity must be >= 1, got {capacity}")
        if stack < 1:
            raise ValueError(f"frame stack must be >= 1, got {stack}")
        self.capacity = int(capacity)
        self.k = int(stack)
        self.slots = self.capacity + self.k  # the oldest stack's frames .. the newest next frame
        self.frame_shape = tuple(int(s) for s in frame_shape)
        self.frame_dtype = np.dtype(frame_dtype)
        self._alloc = False  # allocated on first use: a fresh or frozen copy costs nothing
        self.t = 0            # transitions added so far (global step of the next one)
        self.floor = 0        # the first global step still sampleable (moves on clear())
        self.new_episode = True
        self.cur_start = 0    # global step at which the current episode began
        self.final: dict[int, np.ndarray] = {}  # step -> final frame, for truncated or cut steps
        self.cut_steps: set[int] = set()        # steps whose episode a task switch cut short

    def _allocate(self) -> None:
        n = self.slots
        # np.zeros maps untouched pages lazily: a 10^6 buffer costs memory as it fills.
        self.frames = np.zeros((n, *self.frame_shape), self.frame_dtype)
        self.action = np.zeros(n, np.int64)
        self.reward = np.zeros(n, np.float64)
        self.terminated = np.zeros(n, np.bool_)
        self.bootstrap_final = np.zeros(n, np.bool_)  # truncated or cut: next frame in self.final
        self.ep_start = np.zeros(n, np.int64)
        self._alloc = True

    # -- filling --------------------------------------------------------------------------
    @property
    def size(self) -> int:
        return self.t - self.lo

    @property
    def lo(self) -> int:
        """The oldest sampleable global step."""
        return max(self.floor, self.t - self.capacity)

    def add(self, frame: Any, action: int, reward: float, next_frame: Any, terminated: bool, truncated: bool) -> None:
        """Add step ``self.t``: the newest frame of its observation, the action, the reward, the
        newest frame of the next observation and how the step ended."""
        if not self._alloc:
            self._allocate()
        t = self.t
        s = t % self.slots
        if self.new_episode:
            self.cur_start = t
            self.new_episode = False
        self.frames[s] = frame
        self.action[s] = action
        self.reward[s] = reward
        self.terminated[s] = terminated
        self.bootstrap_final[s] = truncated and not terminated
        self.ep_start[s] = self.cur_start
        if terminated or truncated:
            if truncated and not terminated:
                self.final[t] = np.array(next_frame, dtype=self.frame_dtype)
            self.new_episode = True
        else:
            self.frames[(t + 1) % self.slots] = next_frame
        self.t = t + 1
        # Forget side frames that slid out of the window (amortised O(1): at most one per step).
        old = self.t - self.capacity - 1
        if old in self.final:
            del self.final[old]
        self.cut_steps.discard(old)

    def cut(self) -> None:
        """The episode in progress is cut short (the task switched): its last step bootstraps
        from the frame that followed it (already in the next slot), and the next step added
        starts a new episode."""
        if self.t == 0 or self.new_episode:
            return
        last = self.t - 1
        s = last % self.slots
        self.final[last] = self.frames[self.t % self.slots].copy()
        self.bootstrap_final[s] = True
        self.cut_steps.add(last)
        self.new_episode = True

    def clear(self) -> None:
        """Forget every stored transition (frames stay where stacks may still need them)."""
        self.floor = self.t

    # -- sampling -------------------------------------------------------------------------
    def sample_indices(self, batch: int, rng: np.random.Generator) -> np.ndarray:
        n = self.size
        if n <= 0:
            raise ValueError("cannot sample from an empty replay buffer")
        return self.lo + rng.integers(0, n, size=batch)

    def gather(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        """For global steps ``idx``: ``frames [B, k+1, *frame]`` (``[:, :k]`` is the stack of obs,
        ``[:, 1:]`` the stack of next_obs), ``action``, ``reward``, ``terminated``."""
        idx = np.asarray(idx, dtype=np.int64)
        s = idx % self.slots
        start = self.ep_start[s]
        win = idx[:, None] + np.arange(1 - self.k, 2, dtype=np.int64)[None, :]
        win[:, :-1] = np.maximum(win[:, :-1], start[:, None])
        frames = self.frames[win % self.slots]
        fin = self.bootstrap_final[s]
        if fin.any():
            for row in np.flatnonzero(fin):  # rare: truncations and task switches only
                frames[row, -1] = self.final[int(idx[row])]
        return {"frames": frames, "action": self.action[s], "reward": self.reward[s], "terminated": self.terminated[s]}

    def sample(self, batch: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return self.gather(self.sample_indices(batch, rng))

    def stack_at(self, step: int) -> np.ndarray:
        """The stack of the observation of a stored step (tests; ``[k, *frame]``)."""
        return self.gather(np.array([step]))["frames"][0, :-1]

    # -- state ----------------------------------------------------------------------------
    def state(self, *, history_backed: bool = False) -> dict[str, Any]:
        """Checkpointable state. With ``history_backed`` the rows the recorded history already
        holds are left out (see ``load_state``); what remains is small."""
        head = {"t": self.t, "floor": self.floor, "new_episode": self.new_episode, "cur_start": self.cur_start,
                "history_backed": history_backed}
        cut = sorted(self.cut_steps)
        head["cut_steps"] = np.asarray(cut, np.int64)
        head["cut_frames"] = (np.stack([self.final[c] for c in cut]) if cut
                              else np.zeros((0, *self.frame_shape), self.frame_dtype))
        if not self._alloc or self.t == 0:
            head["next_frame"] = np.zeros(self.frame_shape, self.frame_dtype)
            head["rows"] = None
            return head
        head["next_frame"] = self.frames[self.t % self.slots].copy()
        if history_backed:
            head["rows"] = None
            return head
        a = max(0, self.lo - self.k + 1)
        g = np.arange(a, self.t, dtype=np.int64)
        s = g % self.slots
        fin = sorted(k for k in self.final if k not in self.cut_steps)
        head["rows"] = {
            "first": a, "frames": self.frames[s], "action": self.action[s], "reward": self.reward[s],
            "terminated": self.terminated[s], "bootstrap_final": self.bootstrap_final[s], "ep_start": self.ep_start[s],
            "final_steps": np.asarray(fin, np.int64),
            "final_frames": np.stack([self.final[k] for k in fin]) if fin else np.zeros((0, *self.frame_shape), self.frame_dtype),
        }
        return head

    def load_state(self, state: dict[str, Any], *, history: Any = None, frame_of: Any = None) -> None:
        """Restore a ``state()``. A history-backed state needs ``history`` (a LearningHistory with
        at least ``t`` rows; memory maps are read once, in chunks) and ``frame_of`` (maps a
        history ``obs`` row batch to frames, e.g. the newest frame of a stack)."""
        self._allocate()
        self.t = int(state["t"])
        self.floor = int(state["floor"])
        self.new_episode = bool(state["new_episode"])
        self.cur_start = int(state["cur_start"])
        self.final = {}
        self.cut_steps = set(int(c) for c in np.asarray(state["cut_steps"]))
        for c, f in zip(np.asarray(state["cut_steps"]), np.asarray(state["cut_frames"])):
            self.final[int(c)] = np.array(f, dtype=self.frame_dtype)
        if self.t == 0:
            return
        a = max(0, self.lo - self.k + 1)
        if state["history_backed"]:
            if history is None:
                raise ValueError("this replay state is history-backed: pass the recorded history to rebuild it")
            self._rebuild(history, a, frame_of)
        else:
            r = state["rows"]
            if int(r["first"]) != a:
                raise ValueError(f"replay state starts at step {r['first']}, expected {a}")
            s = np.arange(a, self.t, dtype=np.int64) % self.slots
            self.frames[s] = r["frames"]
            self.action[s] = r["action"]
            self.reward[s] = r["reward"]
            self.terminated[s] = r["terminated"]
            self.bootstrap_final[s] = r["bootstrap_final"]
            self.ep_start[s] = r["ep_start"]
            for k, f in zip(np.asarray(r["final_steps"]), np.asarray(r["final_frames"])):
                self.final[int(k)] = np.array(f, dtype=self.frame_dtype)
        self.frames[self.t % self.slots] = state["next_frame"]

    def _rebuild(self, h: Any, a: int, frame_of: Any) -> None:
        t = self.t
        if len(h) < t:
            raise ValueError(f"history has {len(h)} rows; the replay needs {t}")
        frame_of = frame_of or (lambda x: x)
        ep = np.asarray(h.episode[max(0, a - 1):t])
        seg = np.asarray(h.segment[max(0, a - 1):t])
        # Episode starts inside [a, t): after an episode end, or at a segment switch (a cut).
        if a == 0:
            new = np.r_[True, (ep[1:] != ep[:-1]) | (seg[1:] != seg[:-1])]
        else:
            new = (ep[1:] != ep[:-1]) | (seg[1:] != seg[:-1])
        g = np.arange(a, t, dtype=np.int64)
        starts = np.where(new, g, -1)
        starts = np.maximum.accumulate(starts)
        if (starts < 0).any():
            # The episode of the oldest rows began before row a: find where (scan backwards).
            first = self._episode_start_before(h, a)
            starts = np.where(starts < 0, first, starts)
        chunk = 1 << 15
        for lo in range(a, t, chunk):
            hi = min(t, lo + chunk)
            s = np.arange(lo, hi, dtype=np.int64) % self.slots
            self.frames[s] = frame_of(np.asarray(h.obs[lo:hi]))
            self.action[s] = np.asarray(h.action[lo:hi])
            self.reward[s] = np.asarray(h.reward[lo:hi])
            term = np.asarray(h.terminated[lo:hi])
            trunc = np.asarray(h.truncated[lo:hi])
            self.terminated[s] = term
            self.bootstrap_final[s] = trunc & ~term
            self.ep_start[s] = starts[lo - a:hi - a]
        for c in self.cut_steps:
            if a <= c < t:
                self.bootstrap_final[c % self.slots] = True
        fs = np.asarray(h.final_obs_step)
        sel = np.flatnonzero((fs >= a) & (fs < t))
        if len(sel):
            steps = fs[sel]
            keep = ~np.asarray(h.terminated)[steps] & np.asarray(h.truncated)[steps]
            sel, steps = sel[keep], steps[keep]
            if len(sel):
                frames = frame_of(np.asarray(h.final_obs[sel]))
                for k, f in zip(steps, frames):
                    self.final[int(k)] = np.array(f, dtype=self.frame_dtype)

    @staticmethod
    def _episode_start_before(h: Any, a: int) -> int:
        ep = np.asarray(h.episode)
        seg = np.asarray(h.segment)
        i = a
        step = 4096
        while i > 0:
            lo = max(0, i - step)
            e, sg = ep[lo:i + 1], seg[lo:i + 1]
            b = np.flatnonzero((e[1:] != e[:-1]) | (sg[1:] != sg[:-1]))
            if len(b):
                return lo + int(b[-1]) + 1
            i = lo
        return 0


__all__ = ["FrameReplay"]
