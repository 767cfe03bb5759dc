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
from learners.files import read_json

_STATE = "state.json"
_FORMAT = "hypospace.checkpoint/1"


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


def load_state(directory: str | os.PathLike, *, mmap: bool = False) -> Any:
    """Read a checkpoint written by ``save_state`` (falls back to ``<dir>.old`` if a crash
    interrupted the swap)."""
    d = Path(directory)
    if not (d / _STATE).exists():
        old = d.with_name(d.name + ".old")
        if (old / _STATE).exists():
            d = old
        else:
            raise CheckpointError(f"{directory}: no checkpoint ({_STATE} missing)")
    meta = read_json(d / _STATE, CheckpointError)
    if meta.get("format") != _FORMAT:
        raise CheckpointError(f"{d / _STATE}: not a hypospace checkpoint")

    def arr(name: str) -> np.ndarray:
        p = d / name
        if not p.exists():
            raise CheckpointError(f"{p}: missing array file")
        try:
            return np.load(p, mmap_mode="r" if mmap else None, allow_pickle=False)
        except ValueError as e:
            raise CheckpointError(f"{p}: unreadable ({e})") from None

    def dec(x: Any) -> Any:
        if isinstance(x, dict):
            if "__dict__" in x:
                return {k: dec(v) for k, v in x["__dict__"].items()}
            if "__list__" in x:
                out = [dec(v) for v in x["__list__"]]
                return tuple(out) if x.get("tuple") else out
            if "__array__" in x:
                return arr(x["__array__"])
            if "__tensor__" in x:
                import torch  # on use: tabular runs resume without paying torch's ~2 s import

                a = np.array(arr(x["__tensor__"]))
                t = torch.from_numpy(a)
                want = getattr(torch, x["dtype"])
                return t.to(want) if t.dtype != want else t
            if "__float__" in x:
                return float(x["__float__"])
        return x

    return dec(meta["tree"])


__all__ = ["save_state", "load_state", "CheckpointError"]
