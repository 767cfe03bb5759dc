"""Pickle-free checkpoints of nested state (resume that really resumes).

A state is a tree of dicts/lists whose leaves are numpy arrays, torch tensors, or JSON values
(None, bool, int — including the 128-bit integers of numpy's PCG64 state —, float, str).
``save_state(dir, state)`` writes every array as its own ``.npy`` file (large ones such as a replay
buffer stream to disk; nothing is pickled) plus ``state.json`` describing the tree, into a
temporary directory that atomically replaces ``dir``. ``load_state(dir)`` rebuilds the tree,
tensors as tensors, arrays as arrays (memory-mapped with ``mmap=True``)."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from learners.errors import CheckpointError
from learners.files import file_inside, read_json, read_npy_header

_STATE = "state.json"
_FORMAT = "hypospace.checkpoint/1"
# Real states nest a few levels (optimizer -> state -> parameter -> moment); far deeper is hostile.
_MAX_DEPTH = 200


def _is_tensor(x: Any) -> bool:
    return type(x).__module__.startswith("torch") and type(x).__name__ in ("Tensor", "Parameter")


def save_state(directory: str | os.PathLike, state: Any) -> Path:
    """Write ``state`` to ``directory`` atomically (the old checkpoint survives a crash mid-write)."""
    d = Path(directory)
    tmp = d.with_name(d.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    counter = [0]

    def enc(x: Any) -> Any:
        if isinstance(x, dict):
            for k in x:
                if not isinstance(k, str):
                    raise TypeError(f"checkpoint keys must be strings, got {k!r}")
            return {"__dict__": {k: enc(v) for k, v in x.items()}}
        if isinstance(x, (list, tuple)):
            return {"__list__": [enc(v) for v in x], "tuple": isinstance(x, tuple)}
        if _is_tensor(x):
            t = x.detach().cpu()
            name = f"a{counter[0]:05d}.npy"
            counter[0] += 1
            dtype = str(t.dtype).replace("torch.", "")
            if dtype == "bfloat16":
                arr = t.float().numpy()
            else:
                arr = t.contiguous().numpy()
            np.save(tmp / name, arr, allow_pickle=False)
            return {"__tensor__": name, "dtype": dtype}
        if isinstance(x, np.ndarray):
            if x.dtype.hasobject:
                raise TypeError("object arrays cannot be checkpointed")
            name = f"a{counter[0]:05d}.npy"
            counter[0] += 1
            np.save(tmp / name, x, allow_pickle=False)
            return {"__array__": name}
        if isinstance(x, np.generic):
            return x.item()
        if x is None or isinstance(x, (bool, int, float, str)):
            if isinstance(x, float) and not np.isfinite(x):
                return {"__float__": repr(x)}
            return x
        raise TypeError(f"cannot checkpoint a {type(x).__name__}")

    tree = enc(state)
    with open(tmp / _STATE, "w") as f:
        json.dump({"format": _FORMAT, "tree": tree}, f)
        f.flush()
        os.fsync(f.fileno())
    for p in tmp.iterdir():
        if p.suffix == ".npy":
            with open(p, "rb") as f:
                os.fsync(f.fileno())
    old = d.with_name(d.name + ".old")
    if d.exists():
        if old.exists():
            shutil.rmtree(old)
        os.rename(d, old)
    os.rename(tmp, d)
    if old.exists():
        shutil.rmtree(old)
    return d


def _check_npy(p: Path, field: str) -> np.dtype:
    """The dtype of the .npy file ``p``, after checking its header parses and its size is
    exactly header + data (a truncated file, or bytes appended after the array, is refused)."""
    dtype, shape, _, offset = read_npy_header(p, CheckpointError, f"field '{field}'")
    if dtype.hasobject:
        raise CheckpointError(f"{p}: holds Python objects (field '{field}'); checkpoints hold numbers only")
    n = 1
    for s in shape:
        n *= int(s)
    want = offset + n * dtype.itemsize
    size = p.stat().st_size
    if size != want:
        raise CheckpointError(f"{p}: {size} bytes, its header says {want} (shape {tuple(shape)}, {dtype}; "
                              f"field '{field}'): truncated or edited")
    return dtype


def load_state(directory: str | os.PathLike, *, mmap: bool = False) -> Any:
    """Read a checkpoint written by ``save_state`` (falls back to ``<dir>.old`` if a crash
    interrupted the swap).

    Anything that does not describe a checkpoint ``save_state`` could have written -- bad JSON, a
    tree nested deeper than ``_MAX_DEPTH``, a field of the wrong type, an array file that is
    missing, truncated, lies about its dtype or leads out of the directory -- raises one
    ``CheckpointError`` naming the file and the field."""
    d = Path(directory)
    if not (d / _STATE).exists():
        old = d.with_name(d.name + ".old")
        if (old / _STATE).exists():
            d = old
        else:
            raise CheckpointError(f"{directory}: no checkpoint ({_STATE} missing)")
    try:
        root = d.resolve()
    except (OSError, RuntimeError, ValueError) as e:
        raise CheckpointError(f"{d}: cannot be resolved ({e})") from None
    sp = d / _STATE
    if not sp.resolve().is_relative_to(root) or not sp.resolve().is_file():
        raise CheckpointError(f"{sp}: not a regular file inside the checkpoint directory")
    try:
        meta = read_json(sp, CheckpointError)
    except RecursionError:
        raise CheckpointError(f"{sp}: nested too deeply to be a checkpoint") from None
    if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
        raise CheckpointError(f"{sp}: not a hypospace checkpoint (field 'format')")
    if "tree" not in meta:
        raise CheckpointError(f"{sp}: field 'tree' missing")

    def bad(field: str, why: str) -> CheckpointError:
        return CheckpointError(f"{sp}: field '{field}' {why}")

    def arr(name: Any, field: str) -> tuple[np.ndarray, np.dtype]:
        p = file_inside(d, name,
                        error=CheckpointError, container="the checkpoint directory",
                        where=f"{d / _STATE}: field '{field}'", root=root)
        dtype = _check_npy(p, field)
        try:
            return np.load(p, mmap_mode="r" if mmap else None, allow_pickle=False), dtype
        except (ValueError, EOFError, OSError, MemoryError, OverflowError, TypeError) as e:
            raise CheckpointError(f"{p}: unreadable ({type(e).__name__}: {e}; field '{field}')") from None

    def tensor(x: dict[str, Any], field: str) -> Any:
        import torch  # on use: tabular runs resume without paying torch's ~2 s import

        name = x.get("dtype")
        want = getattr(torch, name, None) if isinstance(name, str) and name.isidentifier() else None
        if not isinstance(want, torch.dtype):
            raise bad(f"{field}.dtype", f"is {name!r}, not a torch dtype")
        a, dtype = arr(x["__tensor__"], f"{field}.__tensor__")
        try:
            a = np.array(a, dtype=dtype.newbyteorder("="))
            t = torch.from_numpy(a)
        except (TypeError, ValueError, RuntimeError) as e:
            raise CheckpointError(f"{d / str(x['__tensor__'])}: {dtype} cannot be a tensor ({e}; field '{field}')") from None
        # The writer stores a tensor's own dtype, except bfloat16 (numpy has none) as float32.
        stored = torch.float32 if want == torch.bfloat16 else want
        if t.dtype != stored:
            raise CheckpointError(f"{d / str(x['__tensor__'])}: holds {dtype}, field '{field}.dtype' says {name}")
        return t.to(want) if t.dtype != want else t

    def dec(x: Any, field: str, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise bad(field, f"nests deeper than {_MAX_DEPTH} levels")
        if isinstance(x, dict):
            if "__dict__" in x:
                v = x["__dict__"]
                if not isinstance(v, dict):
                    raise bad(f"{field}.__dict__", f"is a {type(v).__name__}, expected an object")
                return {k: dec(w, f"{field}.{k}", depth + 1) for k, w in v.items()}
            if "__list__" in x:
                v = x["__list__"]
                if not isinstance(v, list):
                    raise bad(f"{field}.__list__", f"is a {type(v).__name__}, expected a list")
                out = [dec(w, f"{field}[{i}]", depth + 1) for i, w in enumerate(v)]
                return tuple(out) if x.get("tuple") else out
            if "__array__" in x:
                return arr(x["__array__"], f"{field}.__array__")[0]
            if "__tensor__" in x:
                return tensor(x, field)
            if "__float__" in x:
                v = x["__float__"]
                if v not in ("nan", "inf", "-inf"):
                    raise bad(f"{field}.__float__", f"is {v!r}, expected 'nan', 'inf' or '-inf'")
                return float(v)
            raise bad(field, f"is an object with keys {sorted(x)[:5]}, not a checkpoint node")
        if isinstance(x, list):
            raise bad(field, "is a bare list, not a checkpoint node")
        return x

    return dec(meta["tree"], "tree", 0)


__all__ = ["save_state", "load_state", "CheckpointError"]
