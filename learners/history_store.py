"""The on-disk store of a ``LearningHistory``.

On disk a history is a directory holding one ``.npy`` file per column (memory-mapped on load,
so a 10^6-step Atari history streams), ``snapshots/*.safetensors`` and ``manifest.json`` with
shape, dtype and sha256 of every file. ``HistoryWriter`` streams rows to
``<dir>.partial/`` and renames it to ``<dir>`` only when complete; ``load`` refuses a directory
whose files do not match the manifest, naming the file and the field.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import struct
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from learners.files import file_inside, read_json_object, sha256_file, to_jsonable
from learners.files import read_npy_header as files_read_npy_header
from learners.history import CANONICAL_DTYPE, OPTIONAL, REQUIRED, SPARSE, STEP_COLUMNS, HistoryError, LearningHistory

FORMAT = "hypospace.LearningHistory"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SNAPSHOT_DIR = "snapshots"


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


def read_npy_header(path: Path) -> tuple[np.dtype, tuple[int, ...], int]:
    """Return (dtype, shape, data offset) of a .npy column file, or raise HistoryError naming it."""
    dtype, shape, fortran, offset = files_read_npy_header(path, HistoryError)
    if fortran:
        raise HistoryError(f"{path.name}: Fortran-ordered arrays are not supported")
    return dtype, shape, offset


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


class ColumnFile:
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


def save_history(h: LearningHistory, directory: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``h`` to ``directory`` atomically (through a ``HistoryWriter``)."""
    h.validate()
    w = HistoryWriter(
        directory,
        obs_shape=h.obs.shape[1:],
        obs_dtype=h.obs.dtype,
        n_actions=h.n_actions,
        probs_dtype=h.teacher_probs.dtype,
        values_dtype=None if h.teacher_values is None else h.teacher_values.dtype,
        metadata=h.metadata,
        overwrite=overwrite,
    )
    try:
        step = 1 << 16
        for lo in range(0, max(len(h), 1), step):
            sl = slice(lo, lo + step)
            if lo >= len(h):
                break
            w.append_rows(
                obs=h.obs[sl], action=h.action[sl], reward=h.reward[sl],
                terminated=h.terminated[sl], truncated=h.truncated[sl],
                episode=h.episode[sl], teacher_probs=h.teacher_probs[sl],
                segment=h.segment[sl],
                teacher_values=None if h.teacher_values is None else h.teacher_values[sl],
            )
        if h.final_obs is not None:
            w.append_final_obs_rows(np.asarray(h.final_obs_step), np.asarray(h.final_obs))
        for s in h.snapshot_steps:
            w.add_snapshot(s, h.weights_at(s))
        return w.close().path
    except BaseException:
        w.abort()
        raise


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def load_history(directory: str | os.PathLike, *, verify: bool = True, mmap: bool = True) -> LearningHistory:
    """Open a saved history (see ``LearningHistory.load``)."""
    d = Path(directory)
    mpath = d / MANIFEST
    if not d.is_dir():
        raise HistoryError(f"{d}: no such history directory")
    root = d.resolve()
    hint = " (an unfinished .partial run?)" if d.name.endswith(".partial") else ""
    try:
        real = mpath.resolve()
    except (OSError, RuntimeError) as e:   # a symlink loop
        raise HistoryError(f"{mpath}: cannot be resolved ({e})") from None
    if not real.is_relative_to(root):
        raise HistoryError(f"{mpath}: leads out of the history directory to {real}")
    if mpath.exists() and not real.is_file():
        raise HistoryError(f"{mpath}: not a regular file")
    manifest = read_json_object(mpath, HistoryError, missing=f"{mpath}: missing manifest{hint}",
                                what="manifest")
    if manifest.get("format") != FORMAT:
        raise HistoryError(f"{mpath}: field 'format' is {manifest.get('format')!r}, expected {FORMAT!r}")
    version = manifest.get("version")
    if not _is_int(version) or version != FORMAT_VERSION:
        raise HistoryError(f"{mpath}: field 'version' is {version!r}, this code reads {FORMAT_VERSION}")
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise HistoryError(f"{mpath}: field 'files' missing")
    for key in ("n_steps", "n_actions"):
        if not _is_int(manifest.get(key)) or manifest[key] < 0:
            raise HistoryError(f"{mpath}: field '{key}' is {manifest.get(key)!r}, expected a non-negative integer")
    metadata = manifest.get("metadata")
    if not isinstance(metadata, dict):
        raise HistoryError(f"{mpath}: field 'metadata' is {type(metadata).__name__} {metadata!r:.60}, expected an object")
    arrays: dict[str, np.ndarray] = {}
    for col in REQUIRED + SPARSE:
        if col not in files:
            raise HistoryError(f"{mpath}: field 'files.{col}' missing")
    for col, entry in files.items():
        if col not in STEP_COLUMNS + SPARSE:
            raise HistoryError(f"{mpath}: unknown column {col!r} in field 'files'")
        arrays[col] = _load_column(d, root, col, entry, verify=verify, mmap=mmap)
    snaps = _snapshot_listing(d, root, manifest.get("snapshots"), verify=verify)
    h = LearningHistory(
        obs=arrays["obs"], action=arrays["action"], reward=arrays["reward"],
        terminated=arrays["terminated"], truncated=arrays["truncated"], episode=arrays["episode"],
        teacher_probs=arrays["teacher_probs"], segment=arrays["segment"],
        teacher_values=arrays.get("teacher_values"),
        final_obs_step=np.asarray(arrays["final_obs_step"]), final_obs=arrays["final_obs"],
        metadata=metadata, path=d,
    )
    h.attach_snapshot_files(snaps)
    h.validate()
    # The manifest's summary must agree with the columns it describes.
    if manifest["n_steps"] != len(h):
        raise HistoryError(f"{mpath}: field 'n_steps' is {manifest['n_steps']}, but the column 'action' has {len(h)} rows")
    if manifest["n_actions"] != h.n_actions:
        raise HistoryError(f"{mpath}: field 'n_actions' is {manifest['n_actions']}, but the column 'teacher_probs' has {h.n_actions}")
    return h


def _snapshot_listing(d: Path, root: Path, listing: Any, *, verify: bool) -> dict[int, tuple[str, str | None]]:
    """The manifest's ``snapshots`` field as ``{step: (file name, sha256)}``, every entry checked."""
    if not isinstance(listing, list):
        raise HistoryError(f"{MANIFEST}: field 'snapshots' is {type(listing).__name__}, expected a list")
    snaps: dict[int, tuple[str, str | None]] = {}
    for i, s in enumerate(listing):
        field = f"snapshots[{i}]"
        if not isinstance(s, dict):
            raise HistoryError(f"{MANIFEST}: field '{field}' is {type(s).__name__}, expected an object with step/file/sha256")
        for key in ("step", "file", "sha256"):
            if key not in s:
                raise HistoryError(f"{MANIFEST}: field '{field}.{key}' missing")
        step, name, digest = s["step"], s["file"], s["sha256"]
        if not _is_int(step) or step < 0:
            raise HistoryError(f"{MANIFEST}: field '{field}.step' is {step!r}, expected a non-negative integer")
        if step in snaps:
            raise HistoryError(f"{MANIFEST}: field '{field}.step' repeats step {step}")
        if not isinstance(digest, str):
            raise HistoryError(f"{MANIFEST}: field '{field}.sha256' is {digest!r}, expected a hex string")
        if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
            raise HistoryError(f"{MANIFEST}: field '{field}.file' is {name!r}, expected a file name in {SNAPSHOT_DIR}/")
        if name != f"step_{step:012d}.safetensors":
            # The file's name records its step, so an edited step (or a swapped file) is a lie
            # the loader can see, not weights silently served at the wrong step.
            raise HistoryError(f"{MANIFEST}: field '{field}.file' is {name!r}, which is not the snapshot of "
                               f"step {step} (field '{field}.step')")
        p = file_inside(d, f"{SNAPSHOT_DIR}/{name}",
                        error=HistoryError, container="the history directory",
                        where=f"{MANIFEST} field '{field}.file'", root=root)
        if verify and sha256_file(p) != digest:
            raise HistoryError(f"{SNAPSHOT_DIR}/{name}: sha256 does not match the manifest")
        snaps[step] = (name, digest)
    # Every snapshot on disk is listed (the writer leaves no stray ones): a manifest whose list
    # was shortened would otherwise load without those weights, silently.
    sdir = d / SNAPSHOT_DIR
    if sdir.is_dir():
        listed = {name for name, _ in snaps.values()}
        extra = sorted(f for f in os.listdir(sdir) if f.endswith(".safetensors") and f not in listed)
        if extra:
            raise HistoryError(f"{SNAPSHOT_DIR}/{extra[0]}: on disk but not listed in {MANIFEST} field 'snapshots' "
                               f"({len(extra)} unlisted; an edited manifest?)")
    return snaps


def read_snapshot(directory: Path, name: str, digest: str | None) -> dict[str, np.ndarray]:
    """A weight snapshot file of a saved history, checked against its manifest digest."""
    p = Path(directory) / SNAPSHOT_DIR / name
    try:
        if digest is not None and sha256_file(p) != digest:
            raise HistoryError(f"{SNAPSHOT_DIR}/{name}: sha256 does not match the manifest")
        return load_file(str(p))
    except (OSError, SafetensorError) as e:   # removed or damaged since the history was loaded
        raise HistoryError(f"{SNAPSHOT_DIR}/{name}: cannot be read ({e})") from None


def open_partial(partial: Path, rows: int, final_obs_rows: int) -> LearningHistory:
    """The first ``rows`` steps of an unfinished run in ``<out>.partial`` as a LearningHistory of
    read-only memory maps (no manifest yet: shapes come from the checkpoint's row counts)."""
    cols: dict[str, np.ndarray] = {}
    for c in REQUIRED + OPTIONAL + SPARSE:
        p = Path(partial) / f"{c}.npy"
        if not p.exists():
            if c in OPTIONAL:
                continue
            raise FileNotFoundError(f"{p}: missing; cannot rebuild the teacher's state from the partial run")
        dtype, shape, offset = read_npy_header(p)
        n = final_obs_rows if c in SPARSE else rows
        cols[c] = (np.memmap(p, dtype=dtype, mode="r", offset=offset, shape=(n, *shape[1:])) if n
                   else np.zeros((0, *shape[1:]), dtype))
    return LearningHistory(**cols)


def _load_column(d: Path, root: Path, col: str, entry: Any, *, verify: bool, mmap: bool) -> np.ndarray:
    field = f"files.{col}"
    if not isinstance(entry, dict) or not all(k in entry for k in ("file", "shape", "dtype", "sha256")):
        raise HistoryError(f"{MANIFEST}: field '{field}' lacks file/shape/dtype/sha256")
    fname, shape, descr, digest = entry["file"], entry["shape"], entry["dtype"], entry["sha256"]
    if not isinstance(shape, list) or not all(_is_int(n) and n >= 0 for n in shape):
        raise HistoryError(f"{MANIFEST}: field '{field}.shape' is {shape!r:.60}, expected a list of non-negative integers")
    shape = tuple(shape)
    try:
        if not isinstance(descr, str):
            raise TypeError("not a string")
        want = np.dtype(descr)
    except Exception as e:  # noqa: BLE001 - np.dtype raises TypeError, ValueError, SyntaxError, ...
        raise HistoryError(f"{MANIFEST}: field '{field}.dtype' is {descr!r:.60}, not a numpy dtype ({e})") from None
    p = file_inside(d, fname,
                    error=HistoryError, container="the history directory", where=f"{MANIFEST} field '{field}.file'",
                    root=root)
    dtype, fshape, offset = read_npy_header(p)
    if fshape != shape:
        raise HistoryError(f"{fname}: header shape {fshape} differs from the manifest's {shape} (column '{col}', field '{field}.shape')")
    if dtype.str != want.str:
        raise HistoryError(f"{fname}: dtype {dtype} differs from the manifest's {descr} (column '{col}', field '{field}.dtype')")
    if dtype.hasobject:
        raise HistoryError(f"{fname}: dtype {dtype} holds Python objects, which a history never does (column '{col}', field '{field}.dtype')")
    expected = offset + math.prod(shape) * dtype.itemsize   # Python ints: a hostile shape cannot overflow
    size = p.stat().st_size
    if size != expected:
        raise HistoryError(f"{fname}: {size} bytes, expected {expected} (truncated or padded; column '{col}', field '{field}.shape')")
    if verify and sha256_file(p) != digest:
        raise HistoryError(f"{fname}: sha256 does not match the manifest (column '{col}' was modified; field '{field}.sha256')")
    if math.prod(shape) == 0:
        return np.zeros(shape, dtype)
    try:
        return np.load(p, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise HistoryError(f"{fname}: cannot be read ({e}; column '{col}')") from None


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
            # Snapshots the killed run took after its last checkpoint are not part of the history
            # any more; the resumed run takes them again.
            kept = {s["file"] for s in self.snapshots}
            for f in os.listdir(self.partial / SNAPSHOT_DIR):
                if f.endswith(".safetensors") and f not in kept:
                    (self.partial / SNAPSHOT_DIR / f).unlink()
        def resume_rows(c: str) -> int | None:
            if _resume is None:
                return None
            return _resume["final_obs_rows"] if c in SPARSE else _resume["rows"]

        self.cols = {}
        try:
            for c, (dt, shape) in specs.items():
                self.cols[c] = ColumnFile(self.partial / f"{c}.npy", dt, shape, resume_rows=resume_rows(c))
        except BaseException:
            # A disk that fills while the column headers are written: close what was opened and,
            # for a new run, leave no half-made <dir>.partial behind (a resumed run keeps its files).
            for col in self.cols.values():
                col.f.close()
            if _resume is None:
                shutil.rmtree(self.partial, ignore_errors=True)
            raise
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


__all__ = ["HistoryWriter", "load_history", "save_history", "open_partial", "read_snapshot", "read_npy_header", "ColumnFile"]
