"""Small file helpers every stage shares: one checksum, one atomic JSON write, one conversion of
numpy values and paths to JSON."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

_CHUNK = 1 << 22  # 4 MiB: a 10^6-step Atari column is hashed without loading it whole


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(_CHUNK), b""):
            h.update(b)
    return h.hexdigest()


def json_value(x: Any) -> Any:
    """One numpy array / numpy scalar / path as a JSON value; ``TypeError`` for anything else
    (the ``default=`` hook of ``json.dump``)."""
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def to_jsonable(x: Any) -> Any:
    """A JSON-safe copy of a nested structure: mappings with string keys, lists for tuples,
    numpy values and paths converted, anything else by its ``repr`` (metadata must always save)."""
    if isinstance(x, Mapping):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if isinstance(x, (np.ndarray, np.generic, Path)):
        return json_value(x)
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    return repr(x)


def file_inside(directory: str | os.PathLike, name: Any, *, error: type[Exception], where: str,
                container: str = "the directory", root: Path | None = None, must_exist: bool = True) -> Path:
    """``directory / name`` for a file name read from data (a manifest, a checkpoint's tree),
    refused with ``error`` (naming the file and ``where`` it was listed) unless it is a regular
    file that stays inside ``root`` (default: ``directory``, resolved) once every symlink is
    followed: no data and no link may make a loader read elsewhere, or block on a FIFO."""
    d = Path(directory)
    if not isinstance(name, str) or not name or "\x00" in name:
        raise error(f"{where} is {name!r}, expected a file name")
    if Path(name).is_absolute() or ".." in Path(name).parts:
        raise error(f"{where} is {name!r}, a path out of {container}")
    p = d / name
    try:
        real, base = p.resolve(), (root or d).resolve()
    except (OSError, RuntimeError, ValueError) as e:  # a symlink loop
        raise error(f"{p}: cannot be resolved ({e}; {where})") from None
    if not real.is_relative_to(base):
        raise error(f"{p}: leads out of {container} to {real} ({where})")
    if not p.exists():
        if must_exist:
            raise error(f"{p}: missing ({where})")
        return p
    if not real.is_file():  # a directory, or a FIFO that would block the read
        raise error(f"{p}: not a regular file ({where})")
    return p


def read_json(path: str | os.PathLike, error: type[Exception], *, missing: str | None = None) -> Any:
    """The JSON value in ``path``, or the caller's ``error`` in one line naming the file:
    ``missing`` (default ``"<path>: missing"``) when there is no file, "corrupt" when it is not JSON."""
    p = Path(path)
    if not p.exists():
        raise error(missing or f"{p}: missing")
    try:
        return json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise error(f"{p}: corrupt, not valid JSON ({e})") from None


def read_npy_header(path: str | os.PathLike, error: type[Exception], where: str = "") -> tuple[np.dtype, tuple[int, ...], bool, int]:
    """(dtype, shape, fortran order, data offset) of a ``.npy`` file, or the caller's ``error``
    naming the file (and ``where`` it was listed) when the header does not parse."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f"unsupported .npy version {version}")
            offset = f.tell()
    except Exception as e:  # noqa: BLE001 - numpy's header parser (ast, tokenize) raises many types
        raise error(f"{p}: not a readable .npy file ({type(e).__name__}: {e}{'; ' + where if where else ''})") from None
    return np.dtype(dtype), tuple(shape), bool(fortran), offset


def read_json_object(path: str | os.PathLike, error: type[Exception], *, missing: str | None = None,
                     what: str = "file") -> dict[str, Any]:
    """``read_json`` for a file that must hold one JSON object (a manifest, a checkpoint's
    metadata): a nesting too deep to parse, or any other JSON value, is the caller's ``error``."""
    p = Path(path)
    try:
        value = read_json(p, error, missing=missing)
    except RecursionError:
        raise error(f"{p}: {what} too deeply nested") from None
    if not isinstance(value, dict):
        raise error(f"{p}: a JSON {type(value).__name__}, expected an object (the {what})")
    return value


def write_json_atomic(path: str | os.PathLike, obj: Any, *, indent: int | None = 1, sort_keys: bool = False) -> Path:
    """Write JSON to a temporary name in the same directory, fsync, then rename: a reader sees
    the old file or the whole new one, never half of it."""
    p = Path(path)
    tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=indent, sort_keys=sort_keys, default=json_value)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, p)
    return p


__all__ = ["sha256_file", "json_value", "to_jsonable", "read_json", "write_json_atomic"]
