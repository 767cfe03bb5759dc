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

On disk a history is a directory holding one ``.npy`` file per column (memory-mapped on load,
so a 10^6-step Atari history streams), ``snapshots/*.safetensors`` and ``manifest.json`` with
shape, dtype and sha256 of every file. ``HistoryWriter`` streams rows to
``<dir>.partial/`` and renames it to ``<dir>`` only when complete; ``load`` refuses a directory
whose files do not match the manifest, naming the file and the field.
"""
from __future__ import annotations

import json
import os
import shutil
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from learners.files import sha256_file, to_jsonable

FORMAT = "hypospace.LearningHistory"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SNAPSHOT_DIR = "snapshots"

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


# ---------------------------------------------------------------------------------------------
# .npy files with a fixed-size header, so a column can be appended to and its shape patched
# when the run ends (numpy reads them like any other .npy; np.load(mmap_mode="r") maps them).
# ---------------------------------------------------------------------------------------------
_NPY_MAGIC = b"\x93NUMPY\x01\x00"
_NPY_HEADER_TOTAL = 256  # bytes before the data; a multiple of 64 as numpy recommends


def _npy_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    d = "{'descr': %r, 'fortran_order': False, 'shape': %r, }" % (
        np.lib.format.dtype_to_descr(np.dtype(dtype)),
        tuple(int(s) for s in shape),
    )
    body_len = _NPY_HEADER_TOTAL - len(_NPY_MAGIC) - 2
    if len(d) + 1 > body_len:
        raise HistoryError(f"shape {shape} too long for a .npy header")
    body = d.ljust(body_len - 1) + "\n"
    return _NPY_MAGIC + struct.pack("<H", body_len) + body.encode("latin1")


def _read_npy_header(path: Path) -> tuple[np.dtype, tuple[int, ...], int]:
    """Return (dtype, shape, data offset) of a .npy file, or raise HistoryError naming it."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f"unsupported .npy version {version}")
            offset = f.tell()
    except (ValueError, OSError, SyntaxError, struct.error) as e:
        raise HistoryError(f"{path.name}: not a readable .npy file ({e})") from None
    if fortran:
        raise HistoryError(f"{path.name}: Fortran-ordered arrays are not supported")
    return np.dtype(dtype), tuple(shape), offset


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class _ColumnFile:
    """An append-only .npy column: fixed header written first, shape patched on close."""

    def __init__(self, path: Path, dtype: np.dtype, row_shape: tuple[int, ...], *, resume_rows: int | None = None):
        self.path = path
        self.dtype = np.dtype(dtype)
        self.row_shape = tuple(int(s) for s in row_shape)
        self.row_bytes = int(np.prod(self.row_shape, dtype=np.int64)) * self.dtype.itemsize
        if resume_rows is None:
            self.f = open(path, "wb")
            self.f.write(_npy_header(self.dtype, (0, *self.row_shape)))
            self.rows = 0
        else:
            # Continue a partially written column: cut it back to the rows the caller vouches for.
            size = _NPY_HEADER_TOTAL + resume_rows * self.row_bytes
            if not path.exists() or path.stat().st_size < size:
                raise HistoryError(f"{path.name}: holds fewer than {resume_rows} rows; cannot resume")
            self.f = open(path, "r+b")
            self.f.truncate(size)
            self.f.seek(size)
            self.rows = resume_rows

    def append(self, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=self.dtype)
        if rows.shape[1:] != self.row_shape:
            raise HistoryError(f"{self.path.stem}: rows of shape {rows.shape[1:]}, expected {self.row_shape}")
        self.f.write(rows.tobytes())
        self.rows += rows.shape[0]

    def flush(self) -> None:
        self.f.flush()
        os.fsync(self.f.fileno())

    def close(self) -> None:
        self.f.seek(0)
        self.f.write(_npy_header(self.dtype, (self.rows, *self.row_shape)))
        self.f.flush()
        os.fsync(self.f.fileno())
        self.f.close()


# ---------------------------------------------------------------------------------------------
# The history itself
# ---------------------------------------------------------------------------------------------
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
        from safetensors.numpy import load_file

        name, digest = self._snapshot_files[step]
        p = self.path / SNAPSHOT_DIR / name
        if digest is not None and sha256_file(p) != digest:
            raise HistoryError(f"{SNAPSHOT_DIR}/{name}: sha256 does not match the manifest")
        return load_file(str(p))

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

    # -- persistence ---------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the history to ``directory`` atomically (see ``HistoryWriter``)."""
        self.validate()
        w = HistoryWriter(
            directory,
            obs_shape=self.obs.shape[1:],
            obs_dtype=self.obs.dtype,
            n_actions=self.n_actions,
            probs_dtype=self.teacher_probs.dtype,
            values_dtype=None if self.teacher_values is None else self.teacher_values.dtype,
            metadata=self.metadata,
            overwrite=overwrite,
        )
        try:
            step = 1 << 16
            for lo in range(0, max(len(self), 1), step):
                sl = slice(lo, lo + step)
                if lo >= len(self):
                    break
                w.append_rows(
                    obs=self.obs[sl], action=self.action[sl], reward=self.reward[sl],
                    terminated=self.terminated[sl], truncated=self.truncated[sl],
                    episode=self.episode[sl], teacher_probs=self.teacher_probs[sl],
                    segment=self.segment[sl],
                    teacher_values=None if self.teacher_values is None else self.teacher_values[sl],
                )
            if self.final_obs is not None:
                w.append_final_obs_rows(np.asarray(self.final_obs_step), np.asarray(self.final_obs))
            for s in self.snapshot_steps:
                w.add_snapshot(s, self.weights_at(s))
            return w.close().path
        except BaseException:
            w.abort()
            raise

    @classmethod
    def load(cls, directory: str | os.PathLike, *, verify: bool = True, mmap: bool = True) -> "LearningHistory":
        """Open a saved history. Columns are memory maps unless ``mmap=False``.

        With ``verify`` (default) every file's sha256 is checked against the manifest; shapes,
        dtypes and file sizes are always checked. A mismatch raises ``HistoryError`` naming the
        file and the field."""
        d = Path(directory)
        mpath = d / MANIFEST
        if not d.is_dir():
            raise HistoryError(f"{d}: no such history directory")
        if not mpath.exists():
            hint = " (an unfinished .partial run?)" if d.name.endswith(".partial") else ""
            raise HistoryError(f"{mpath}: missing manifest{hint}")
        try:
            manifest = json.loads(mpath.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise HistoryError(f"{mpath}: not valid JSON ({e})") from None
        if manifest.get("format") != FORMAT:
            raise HistoryError(f"{mpath}: field 'format' is {manifest.get('format')!r}, expected {FORMAT!r}")
        if manifest.get("version") != FORMAT_VERSION:
            raise HistoryError(f"{mpath}: field 'version' is {manifest.get('version')!r}, this code reads {FORMAT_VERSION}")
        files = manifest.get("files")
        if not isinstance(files, dict):
            raise HistoryError(f"{mpath}: field 'files' missing")
        arrays: dict[str, np.ndarray] = {}
        for col in REQUIRED + SPARSE:
            if col not in files:
                raise HistoryError(f"{mpath}: field 'files.{col}' missing")
        for col, entry in files.items():
            if col not in STEP_COLUMNS + SPARSE:
                raise HistoryError(f"{mpath}: unknown column {col!r} in field 'files'")
            arrays[col] = _load_column(d, col, entry, verify=verify, mmap=mmap)
        snaps: dict[int, tuple[str, str | None]] = {}
        for s in manifest.get("snapshots", []):
            p = d / SNAPSHOT_DIR / s["file"]
            if not p.exists():
                raise HistoryError(f"{SNAPSHOT_DIR}/{s['file']}: missing (listed in manifest field 'snapshots')")
            if verify and sha256_file(p) != s["sha256"]:
                raise HistoryError(f"{SNAPSHOT_DIR}/{s['file']}: sha256 does not match the manifest")
            snaps[int(s["step"])] = (s["file"], s["sha256"])
        h = cls(
            obs=arrays["obs"], action=arrays["action"], reward=arrays["reward"],
            terminated=arrays["terminated"], truncated=arrays["truncated"], episode=arrays["episode"],
            teacher_probs=arrays["teacher_probs"], segment=arrays["segment"],
            teacher_values=arrays.get("teacher_values"),
            final_obs_step=np.asarray(arrays["final_obs_step"]), final_obs=arrays["final_obs"],
            metadata=manifest.get("metadata", {}), path=d,
        )
        h._snapshot_files = snaps
        h.validate()
        return h


def _load_column(d: Path, col: str, entry: Mapping[str, Any], *, verify: bool, mmap: bool) -> np.ndarray:
    try:
        fname, shape, descr, digest = entry["file"], tuple(entry["shape"]), entry["dtype"], entry["sha256"]
    except (KeyError, TypeError):
        raise HistoryError(f"{MANIFEST}: field 'files.{col}' lacks file/shape/dtype/sha256") from None
    p = d / fname
    if not p.exists():
        raise HistoryError(f"{fname}: missing (column '{col}')")
    dtype, fshape, offset = _read_npy_header(p)
    if fshape != shape:
        raise HistoryError(f"{fname}: header shape {fshape} differs from the manifest's {shape} (column '{col}')")
    if dtype.str != np.dtype(descr).str:
        raise HistoryError(f"{fname}: dtype {dtype} differs from the manifest's {descr} (column '{col}')")
    expected = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    size = p.stat().st_size
    if size != expected:
        raise HistoryError(f"{fname}: {size} bytes, expected {expected} (truncated or padded; column '{col}')")
    if verify and sha256_file(p) != digest:
        raise HistoryError(f"{fname}: sha256 does not match the manifest (column '{col}' was modified)")
    if int(np.prod(shape, dtype=np.int64)) == 0:
        return np.zeros(shape, dtype)
    if mmap:
        return np.load(p, mmap_mode="r")
    return np.load(p)


class HistoryWriter:
    """Streams a history to disk: rows are appended to ``<directory>.partial/``, which is renamed
    to ``<directory>`` by ``close()`` once every file and the manifest are on disk.

    ``flush()`` makes everything appended so far durable and returns the row count; a killed
    run is continued with ``HistoryWriter.resume(directory, rows=..., ...)``, which cuts the
    partial files back to that many rows (the count its checkpoint recorded)."""

    def __init__(
        self,
        directory: str | os.PathLike,
        *,
        obs_shape: Iterable[int],
        obs_dtype: Any,
        n_actions: int,
        probs_dtype: Any = np.float64,
        values_dtype: Any | None = None,
        metadata: Mapping[str, Any] | None = None,
        overwrite: bool = False,
        _resume: dict[str, int] | None = None,
    ):
        self.directory = Path(directory)
        self.partial = self.directory.with_name(self.directory.name + ".partial")
        if self.directory.exists() and not overwrite:
            raise FileExistsError(f"{self.directory} already exists")
        self.obs_shape = tuple(int(s) for s in obs_shape)
        self.obs_dtype = np.dtype(obs_dtype)
        self.n_actions = int(n_actions)
        self.metadata = dict(metadata or {})
        self.overwrite = overwrite
        specs: dict[str, tuple[np.dtype, tuple[int, ...]]] = {
            "obs": (self.obs_dtype, self.obs_shape),
            "action": (CANONICAL_DTYPE["action"], ()),
            "reward": (CANONICAL_DTYPE["reward"], ()),
            "terminated": (CANONICAL_DTYPE["terminated"], ()),
            "truncated": (CANONICAL_DTYPE["truncated"], ()),
            "episode": (CANONICAL_DTYPE["episode"], ()),
            "teacher_probs": (np.dtype(probs_dtype), (self.n_actions,)),
            "segment": (CANONICAL_DTYPE["segment"], ()),
        }
        if values_dtype is not None:
            specs["teacher_values"] = (np.dtype(values_dtype), (self.n_actions,))
        specs["final_obs_step"] = (CANONICAL_DTYPE["final_obs_step"], ())
        specs["final_obs"] = (self.obs_dtype, self.obs_shape)
        if _resume is None:
            if self.partial.exists():
                shutil.rmtree(self.partial)
            (self.partial / SNAPSHOT_DIR).mkdir(parents=True)
            self.snapshots: list[dict[str, Any]] = []
        else:
            if not (self.partial / "partial.json").exists():
                raise HistoryError(f"{self.partial}: no partial run to resume")
            info = json.loads((self.partial / "partial.json").read_text())
            self.snapshots = [s for s in info["snapshots"] if s["step"] <= _resume["rows"]]
        def resume_rows(c: str) -> int | None:
            if _resume is None:
                return None
            return _resume["final_obs_rows"] if c in SPARSE else _resume["rows"]

        self.cols = {
            c: _ColumnFile(self.partial / f"{c}.npy", dt, shape, resume_rows=resume_rows(c))
            for c, (dt, shape) in specs.items()
        }
        self._closed = False

    @classmethod
    def resume(cls, directory: str | os.PathLike, *, rows: int, final_obs_rows: int, **kwargs: Any) -> "HistoryWriter":
        """Reopen ``<directory>.partial`` keeping its first ``rows`` steps and ``final_obs_rows``
        final observations (as recorded by the checkpoint that ``flush()`` preceded)."""
        return cls(directory, _resume={"rows": rows, "final_obs_rows": final_obs_rows}, **kwargs)

    @property
    def rows(self) -> int:
        return self.cols["action"].rows

    @property
    def final_obs_rows(self) -> int:
        return self.cols["final_obs_step"].rows

    def append(self, *, obs: Any, action: int, reward: float, terminated: bool, truncated: bool,
               episode: int, teacher_probs: Any, segment: int = 0, teacher_values: Any = None) -> None:
        """Append one step (for long runs prefer ``append_rows`` with chunks)."""
        self.append_rows(
            obs=np.asarray(obs, self.obs_dtype)[None], action=np.array([action]), reward=np.array([reward]),
            terminated=np.array([terminated]), truncated=np.array([truncated]), episode=np.array([episode]),
            teacher_probs=np.asarray(teacher_probs)[None], segment=np.array([segment]),
            teacher_values=None if teacher_values is None else np.asarray(teacher_values)[None],
        )

    def append_rows(self, *, obs, action, reward, terminated, truncated, episode, teacher_probs, segment, teacher_values=None) -> None:
        n = len(action)
        batch = dict(obs=obs, action=action, reward=reward, terminated=terminated, truncated=truncated,
                     episode=episode, teacher_probs=teacher_probs, segment=segment)
        if "teacher_values" in self.cols:
            if teacher_values is None:
                raise HistoryError("teacher_values: this writer records values but none were given")
            batch["teacher_values"] = teacher_values
        elif teacher_values is not None:
            raise HistoryError("teacher_values: given, but the writer was created without values_dtype")
        for c, v in batch.items():
            v = np.asarray(v)
            if v.shape[0] != n:
                raise HistoryError(f"{c}: {v.shape[0]} rows in a batch of {n}")
            self.cols[c].append(v)

    def append_final_obs(self, step: int, obs: Any) -> None:
        self.append_final_obs_rows(np.array([step], np.int64), np.asarray(obs, self.obs_dtype)[None])

    def append_final_obs_rows(self, steps: np.ndarray, obs: np.ndarray) -> None:
        self.cols["final_obs_step"].append(steps)
        self.cols["final_obs"].append(obs)

    def add_snapshot(self, step: int, weights: Mapping[str, Any]) -> None:
        from safetensors.numpy import save_file

        name = f"step_{int(step):012d}.safetensors"
        p = self.partial / SNAPSHOT_DIR / name
        save_file({k: np.ascontiguousarray(np.asarray(v)) for k, v in weights.items()}, str(p))
        self.snapshots = [s for s in self.snapshots if s["step"] != int(step)]
        self.snapshots.append({"step": int(step), "file": name, "sha256": sha256_file(p)})

    def flush(self) -> int:
        """Make every appended row durable; returns the number of rows (store it in a checkpoint)."""
        for c in self.cols.values():
            c.flush()
        tmp = self.partial / "partial.json.tmp"
        tmp.write_text(json.dumps({"rows": self.rows, "final_obs_rows": self.final_obs_rows, "snapshots": self.snapshots}))
        os.replace(tmp, self.partial / "partial.json")
        return self.rows

    def close(self) -> LearningHistory:
        """Finish the files, write the manifest, rename ``.partial`` to the final name, and
        return the loaded (validated) history."""
        if self._closed:
            raise HistoryError("writer already closed")
        files = {}
        for c, col in self.cols.items():
            col.close()
            files[c] = {
                "file": col.path.name,
                "shape": [col.rows, *col.row_shape],
                "dtype": col.dtype.str,
                "sha256": sha256_file(col.path),
            }
        (self.partial / "partial.json").unlink(missing_ok=True)
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "n_steps": self.rows,
            "n_actions": self.n_actions,
            "files": files,
            "snapshots": sorted(self.snapshots, key=lambda s: s["step"]),
            "metadata": to_jsonable(self.metadata),
        }
        tmp = self.partial / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, self.partial / MANIFEST)
        _fsync_dir(self.partial)
        if self.directory.exists():
            if not self.overwrite:
                self.abort()
                raise FileExistsError(f"{self.directory} appeared while writing")
            shutil.rmtree(self.directory)
        os.rename(self.partial, self.directory)
        _fsync_dir(self.directory.parent)
        self._closed = True
        return LearningHistory.load(self.directory, verify=False)

    def release(self) -> None:
        """Close the column files and keep what is on disk (a checkpointed run that failed:
        ``--resume`` reopens them, cut back to the last checkpoint)."""
        for c in self.cols.values():
            try:
                c.f.close()
            except Exception:
                pass

    def abort(self) -> None:
        """Drop everything written (nothing half-written is left behind)."""
        for c in self.cols.values():
            try:
                c.f.close()
            except Exception:
                pass
        shutil.rmtree(self.partial, ignore_errors=True)
        self._closed = True


__all__ = ["LearningHistory", "HistoryWriter", "HistoryError"]
