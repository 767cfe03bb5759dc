"""``LearningHistory``: one teacher run, the lingua franca of the project.

Columns (length T, step t):

=================  ==============  =====================================================
column             dtype           meaning
=================  ==============  =====================================================
``obs``            any numeric     observation seen before acting at t; ``[T, *obs_shape]``
``action``         int64           action taken at t
``reward``         float64         reward received for ``action[t]``
``terminated``     bool            step t ended the episode in a terminal state
``truncated``      bool            step t ended the episode by a time limit
``episode``        int64           episode index of step t (0-based, non-decreasing)
``teacher_probs``  float32/64      ``[T, A]``: exact distribution ``action[t]`` was drawn from
``teacher_values`` float32/64      ``[T, A]``: action values the teacher acted on (optional)
``segment``        int64           task/segment id (a history may switch task mid-run)
=================  ==============  =====================================================

Because ``obs[t+1]`` after an episode end is the *reset* observation, the observation that
ended each episode is stored sparsely: ``final_obs_step[e]`` (a step t with terminated or
truncated set — or the history's last step, whose successor has no row) and ``final_obs[e]``. ``next_obs(t)`` gives the successor of any step. Learners
that bootstrap at time-limit truncation need it; Atari frames are never stored twice.

Weight snapshots: ``weights_at(step)`` is the teacher's state *before acting at* ``step`` (after
``step`` observed transitions), stored as safetensors files.

Saved and loaded by ``learners.history_store`` (``save``/``load`` here are shortcuts to it).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

#: Columns every history has, and the dtype kind each must have.
REQUIRED = ("obs", "action", "reward", "terminated", "truncated", "episode", "teacher_probs", "segment")
OPTIONAL = ("teacher_values",)
SPARSE = ("final_obs_step", "final_obs")
STEP_COLUMNS = REQUIRED + OPTIONAL
CANONICAL_DTYPE = {
    "action": np.dtype(np.int64),
    "reward": np.dtype(np.float64),
    "terminated": np.dtype(np.bool_),
    "truncated": np.dtype(np.bool_),
    "episode": np.dtype(np.int64),
    "segment": np.dtype(np.int64),
    "final_obs_step": np.dtype(np.int64),
}
FLOAT_COLUMNS = ("teacher_probs", "teacher_values")
PROB_TOL = {np.dtype(np.float64): 1e-6, np.dtype(np.float32): 1e-4}


class HistoryError(ValueError):
    """A history that is malformed, or a directory that does not hold a valid one."""


@dataclass
class LearningHistory:
    """One teacher run; see the module docstring for the columns. Arrays may be memory maps."""

    obs: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    episode: np.ndarray
    teacher_probs: np.ndarray
    segment: np.ndarray
    teacher_values: np.ndarray | None = None
    final_obs_step: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    final_obs: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    _snapshot_files: dict[int, tuple[str, str | None]] = field(default_factory=dict, repr=False)
    _snapshot_mem: dict[int, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_arrays(
        cls,
        *,
        obs: Any,
        action: Any,
        reward: Any,
        terminated: Any,
        truncated: Any,
        teacher_probs: Any,
        episode: Any | None = None,
        teacher_values: Any | None = None,
        segment: Any | None = None,
        final_obs: Mapping[int, Any] | tuple[Any, Any] | None = None,
        snapshots: Mapping[int, Mapping[str, Any]] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> "LearningHistory":
        """Build a history from plain arrays (e.g. a run recorded by another RL library).

        ``episode`` defaults to a count of the episode ends before each step. ``final_obs`` is
        either ``{step: observation}`` or ``(steps, observations)``, for steps that ended an
        episode. ``snapshots`` is ``{step: {name: array}}``. Everything is validated.
        """
        action = np.asarray(action)
        T = action.shape[0]
        terminated = np.asarray(terminated, dtype=bool)
        truncated = np.asarray(truncated, dtype=bool)
        if episode is None:
            done = terminated | truncated
            episode = np.concatenate([[0], np.cumsum(done[:-1])]) if T else np.zeros(0, np.int64)
        if segment is None:
            segment = np.zeros(T, np.int64)
        probs = np.asarray(teacher_probs)
        if probs.dtype.kind != "f":
            probs = probs.astype(np.float64)
        obs = np.asarray(obs)
        if isinstance(final_obs, Mapping):
            steps = np.array(sorted(final_obs), dtype=np.int64)
            fo = np.stack([np.asarray(final_obs[int(s)], dtype=obs.dtype) for s in steps]) if len(steps) else np.zeros((0, *obs.shape[1:]), obs.dtype)
        elif final_obs is not None:
            steps = np.asarray(final_obs[0], dtype=np.int64)
            fo = np.asarray(final_obs[1], dtype=obs.dtype)
        else:
            steps = np.zeros(0, np.int64)
            fo = np.zeros((0, *obs.shape[1:]), obs.dtype)
        h = cls(
            obs=obs,
            action=action.astype(np.int64, copy=False),
            reward=np.asarray(reward, dtype=np.float64),
            terminated=terminated,
            truncated=truncated,
            episode=np.asarray(episode, dtype=np.int64),
            teacher_probs=probs,
            segment=np.asarray(segment, dtype=np.int64),
            teacher_values=None if teacher_values is None else np.asarray(teacher_values),
            final_obs_step=steps,
            final_obs=fo,
            metadata=dict(metadata or {}),
        )
        for step, w in (snapshots or {}).items():
            h._snapshot_mem[int(step)] = {k: np.asarray(v) for k, v in w.items()}
        h.validate()
        return h

    # -- basic facts -------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.action.shape[0])

    @property
    def n_actions(self) -> int:
        return int(self.teacher_probs.shape[1])

    @property
    def n_episodes(self) -> int:
        return int(self.episode[-1]) + 1 if len(self) else 0

    @property
    def done(self) -> np.ndarray:
        return np.asarray(self.terminated) | np.asarray(self.truncated)

    def attach_snapshot_files(self, files: dict[int, tuple[str, str | None]]) -> None:
        """Weight snapshots stored as files in the history's directory: ``{step: (file name,
        sha256 or None)}``, read on demand by ``snapshot``."""
        self._snapshot_files = {int(s): (str(f), d) for s, (f, d) in files.items()}

    @property
    def snapshot_steps(self) -> list[int]:
        return sorted(set(self._snapshot_files) | set(self._snapshot_mem))

    def columns(self) -> dict[str, np.ndarray]:
        cols = {c: getattr(self, c) for c in REQUIRED}
        if self.teacher_values is not None:
            cols["teacher_values"] = self.teacher_values
        cols["final_obs_step"] = self.final_obs_step
        cols["final_obs"] = self.final_obs if self.final_obs is not None else np.zeros((0, *self.obs.shape[1:]), self.obs.dtype)
        return cols

    def next_obs(self, t: int) -> Any:
        """The observation that followed step ``t`` (the episode's last one if ``t`` ended it)."""
        if not (self.terminated[t] or self.truncated[t]) and t + 1 < len(self):
            return self.obs[t + 1]
        i = int(np.searchsorted(self.final_obs_step, t))
        if i >= len(self.final_obs_step) or self.final_obs_step[i] != t:
            what = "ended an episode" if (self.terminated[t] or self.truncated[t]) else "is the last recorded step"
            raise KeyError(f"step {t} {what} but the observation after it was not recorded")
        return self.final_obs[i]

    def episode_returns(self) -> np.ndarray:
        """Sum of rewards of every episode (the last one may be unfinished)."""
        if not len(self):
            return np.zeros(0)
        return np.bincount(np.asarray(self.episode), weights=np.asarray(self.reward), minlength=self.n_episodes)

    def episode_starts(self) -> np.ndarray:
        ep = np.asarray(self.episode)
        return np.flatnonzero(np.r_[True, ep[1:] != ep[:-1]]) if len(self) else np.zeros(0, np.int64)

    def weights_at(self, step: int) -> dict[str, np.ndarray]:
        """The teacher's weight snapshot before acting at ``step``."""
        if step in self._snapshot_mem:
            return self._snapshot_mem[step]
        if step not in self._snapshot_files:
            raise KeyError(f"no weight snapshot at step {step}; snapshots at {self.snapshot_steps[:10]}...")
        name, digest = self._snapshot_files[step]
        return history_store().read_snapshot(self.path, name, digest)

    # -- slicing -----------------------------------------------------------------------------
    def truncate(self, n_steps: int) -> "LearningHistory":
        """The first ``n_steps`` steps (views, no copy), with the snapshots taken up to then."""
        n_steps = int(n_steps)
        if not 0 <= n_steps <= len(self):
            raise ValueError(f"cannot truncate a {len(self)}-step history to {n_steps} steps")
        keep = np.asarray(self.final_obs_step) < n_steps
        fsteps = np.asarray(self.final_obs_step)[keep]
        fobs = None if self.final_obs is None else np.asarray(self.final_obs)[keep]
        if 0 < n_steps < len(self) and not (self.terminated[n_steps - 1] or self.truncated[n_steps - 1]):
            # Keep the successor of the new last step, so a learner conditioned on the truncated
            # history can still apply that step's update.
            fsteps = np.r_[fsteps, n_steps - 1].astype(np.int64)
            nxt = np.asarray(self.obs[n_steps])[None]
            fobs = nxt if fobs is None else np.concatenate([fobs, nxt.astype(fobs.dtype)])
        h = LearningHistory(
            obs=self.obs[:n_steps],
            action=self.action[:n_steps],
            reward=self.reward[:n_steps],
            terminated=self.terminated[:n_steps],
            truncated=self.truncated[:n_steps],
            episode=self.episode[:n_steps],
            teacher_probs=self.teacher_probs[:n_steps],
            segment=self.segment[:n_steps],
            teacher_values=None if self.teacher_values is None else self.teacher_values[:n_steps],
            final_obs_step=fsteps,
            final_obs=fobs,
            metadata={**self.metadata, "truncated_from": len(self)},
            path=self.path,
        )
        h._snapshot_files = {s: v for s, v in self._snapshot_files.items() if s <= n_steps}
        h._snapshot_mem = {s: v for s, v in self._snapshot_mem.items() if s <= n_steps}
        return h

    def first_episodes(self, n_episodes: int) -> "LearningHistory":
        """The steps of the first ``n_episodes`` episodes."""
        return self.truncate(int(np.searchsorted(np.asarray(self.episode), n_episodes, side="left")))

    # -- validation ----------------------------------------------------------------------------
    def validate(self) -> None:
        """Check shapes, dtypes and the probability invariants; raise ``HistoryError`` naming
        the field that is wrong."""
        T = len(self)
        for c in STEP_COLUMNS:
            a = getattr(self, c)
            if a is None:
                continue
            if a.ndim < 1 or a.shape[0] != T:
                raise HistoryError(f"{c}: {a.shape[0] if a.ndim else 'scalar'} rows, expected {T} (the length of 'action')")
            want = CANONICAL_DTYPE.get(c)
            if want is not None and a.dtype != want:
                raise HistoryError(f"{c}: dtype {a.dtype}, expected {want}")
        if self.obs.dtype.kind not in "biuf":
            raise HistoryError(f"obs: dtype {self.obs.dtype} is not numeric")
        for c in FLOAT_COLUMNS:
            a = getattr(self, c)
            if a is not None and (a.ndim != 2 or a.dtype not in PROB_TOL):
                raise HistoryError(f"{c}: expected a float32/float64 [T, A] array, got {a.dtype} {a.shape}")
        A = self.teacher_probs.shape[1]
        if A < 1:
            raise HistoryError("teacher_probs: zero actions")
        if self.teacher_values is not None and self.teacher_values.shape[1] != A:
            raise HistoryError(f"teacher_values: {self.teacher_values.shape[1]} actions, teacher_probs has {A}")
        if T == 0:
            return
        act = np.asarray(self.action)
        if act.min() < 0 or act.max() >= A:
            bad = int(np.flatnonzero((act < 0) | (act >= A))[0])
            raise HistoryError(f"action: step {bad} has action {act[bad]} outside [0, {A})")
        # Probability invariants, in chunks so memory-mapped 10^6-step histories stay streamed.
        tol = PROB_TOL[self.teacher_probs.dtype]
        for lo in range(0, T, 1 << 18):
            p = np.asarray(self.teacher_probs[lo : lo + (1 << 18)], dtype=np.float64)
            a = act[lo : lo + (1 << 18)]
            if not np.all(np.isfinite(p)) or p.min() < 0:
                raise HistoryError(f"teacher_probs: negative or non-finite entries near step {lo}")
            s = np.abs(p.sum(1) - 1.0)
            if s.max() > tol:
                bad = lo + int(np.argmax(s))
                raise HistoryError(f"teacher_probs: row {bad} sums to {p[bad - lo].sum():.9f}, not 1")
            taken = p[np.arange(len(a)), a]
            if taken.min() <= 0:
                bad = lo + int(np.argmin(taken))
                raise HistoryError(f"teacher_probs: step {bad} took action {act[bad]} of probability 0")
        ep = np.asarray(self.episode)
        if ep[0] != 0 or np.any(np.diff(ep) < 0) or np.any(np.diff(ep) > 1):
            raise HistoryError("episode: must start at 0 and increase by at most 1 per step")
        done = self.done
        changes = np.flatnonzero(np.diff(ep)) if T > 1 else np.zeros(0, np.int64)
        if not np.all(done[changes]):
            bad = int(changes[~done[changes]][0])
            raise HistoryError(f"episode: changes after step {bad}, which is neither terminated nor truncated")
        fs = np.asarray(self.final_obs_step)
        if fs.dtype != np.int64 or fs.ndim != 1:
            raise HistoryError("final_obs_step: expected a 1-d int64 array")
        if len(fs):
            ends = done.copy()
            ends[-1] = True  # the successor of the last step may be stored whether or not it ended an episode
            if np.any(np.diff(fs) <= 0) or fs[0] < 0 or fs[-1] >= T or not np.all(ends[fs]):
                raise HistoryError("final_obs_step: steps must be increasing and each must end an episode (or be the last step)")
            fo = self.final_obs
            if fo is None or fo.shape[0] != len(fs) or fo.shape[1:] != self.obs.shape[1:] or fo.dtype != self.obs.dtype:
                raise HistoryError(f"final_obs: expected {len(fs)} observations like 'obs' ({self.obs.dtype}{list(self.obs.shape[1:])})")

    # -- persistence (shortcuts to learners.history_store) ------------------------------------
    def save(self, directory: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the history to ``directory`` atomically (see ``HistoryWriter``)."""
        return history_store().save_history(self, directory, overwrite=overwrite)

    @classmethod
    def load(cls, directory: str | os.PathLike, *, verify: bool = True, mmap: bool = True) -> "LearningHistory":
        """Open a saved history. Columns are memory maps unless ``mmap=False``.

        With ``verify`` (default) every file's sha256 is checked against the manifest; shapes,
        dtypes and file sizes are always checked. A mismatch raises ``HistoryError`` naming the
        file and the field."""
        return history_store().load_history(directory, verify=verify, mmap=mmap)


def history_store() -> Any:
    """The on-disk store module. Imported on use because it imports this module (the store
    writes and reads ``LearningHistory``; the data model knows nothing of files)."""
    import learners.history_store

    return learners.history_store


__all__ = ["LearningHistory", "HistoryError"]
