"""Property-based fuzzing of the checkpoint readers and of the checkpoint writers under a full disk.

Readers: ``learners.checkpoint.load_state`` (the pickle-free format of the DQN teacher's
recorder checkpoints and of the transformer's resume state) and the transformer's
``read_meta`` / ``load_model_weights`` / ``model_from_checkpoint`` / ``load_train_state``. A
checkpoint is saved once, then copied and damaged per example (truncated, bytes edited or
appended, a JSON field replaced, an array rewritten with another dtype, metadata that lies, a
name or symlink leading out of the directory, deeply nested JSON). Every outcome must be either
a load identical to what is on disk in the directory or one ``CheckpointError`` naming the
file -- never another exception, a hang, or a value read from outside the directory (a sentinel
array sits beside every checkpoint; its value must never be loaded).

Writers: ``save_state`` and ``LearningHistory.save`` with every file write failing with ENOSPC
after N bytes: the previous checkpoint / history loads unchanged, and no half directory is left
by the history writer.

A small sample runs by default; ``pytest -m slow tests/test_fuzz_checkpoints.py -s`` runs
>= 10^4 cases and prints the counts per target.
"""
from __future__ import annotations

import builtins
import errno
import io
import json
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

import learners.history_store as history_store
from learners import LearningHistory
from learners.checkpoint import load_state, save_state
from learners.errors import CheckpointError
from learners.files import sha256_file
from learners.transformer.checkpoint import (META, TRAIN_STATE, WEIGHTS, export_model, load_model_weights,
                                             load_train_state, model_from_checkpoint, read_meta, save_checkpoint)
from learners.transformer.model import ADTransformer, ModelConfig

COUNTS: Counter = Counter()
FAST = {"state": 150, "transformer": 80, "disk_state": 25, "disk_history": 25}
SLOW = {"state": 5000, "transformer": 3000, "disk_state": 1000, "disk_history": 1000}
SENTINEL = 424242  # the value of the array outside every checkpoint directory


def fuzz(check, cases: int, /, *fixed, **strategies) -> None:
    """``check(*fixed, **drawn)`` on ``cases`` draws from ``strategies``, the same ones every run.
    No example database: it would be written below the working directory (the repository)."""
    given(**strategies)(settings(max_examples=cases, deadline=None, database=None, derandomize=True, suppress_health_check=[
        HealthCheck.too_slow, HealthCheck.filter_too_much])(lambda **drawn: check(*fixed, **drawn)))()


# =============================================================================================
# Damage: the mutations every reader is shown
# =============================================================================================
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False),
                      st.text(max_size=10))
json_value = st.recursive(json_leaf, lambda c: st.one_of(st.lists(c, max_size=3),
                                                         st.dictionaries(st.text(max_size=6), c, max_size=3)),
                          max_leaves=6)
HOSTILE_NAMES = ["../outside.npy", "OUTSIDE_ABS", "link_out.npy", "loop.npy", "fifo.npy", "sub", "", "a\x00.npy",
                 "sub/../../outside.npy", "./../outside.npy"]
# Checkpoint nodes an edited tree may hold: well-formed ones pointing at hostile files, and malformed ones.
node = st.one_of(
    st.builds(lambda n: {"__array__": n}, st.one_of(st.sampled_from(HOSTILE_NAMES), json_value)),
    st.builds(lambda n, t: {"__tensor__": n, "dtype": t}, st.one_of(st.sampled_from(HOSTILE_NAMES + ["a00000.npy"]), json_value),
              st.one_of(st.sampled_from(["float32", "int64", "bfloat16", "uint8", "Tensor", "nn", "__class__", "float"]),
                        json_value)),
    st.builds(lambda v: {"__float__": v}, st.one_of(st.sampled_from(["nan", "inf", "-inf", "1e999", "x"]), json_value)),
    st.builds(lambda v: {"__dict__": v}, json_value),
    st.builds(lambda v, t: {"__list__": v, "tuple": t}, json_value, json_value),
    json_value,
)
NPY_DTYPES = ["<i8", "<i4", "<f8", "<f4", "|b1", "|u1", ">i8", ">f4", "<f2", "<c16", "|S3", "<U2", "<M8[s]", "|V4"]


def _paths(x: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(x, dict):
        for k, v in x.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(x, list):
        for i, v in enumerate(x):
            out += _paths(v, prefix + (i,))
    return out


def _set(x: Any, path: tuple, v: Any) -> Any:
    if not path:
        return v
    x[path[0]] = _set(x[path[0]], path[1:], v)
    return x


def _nest(v: Any, depth: int) -> str:
    return "[" * depth + json.dumps(v) + "]" * depth


def _hostile_files(root: Path, d: Path) -> None:
    """The sentinel outside ``d`` and the links / FIFOs inside it that a damaged tree may name."""
    np.save(root / "outside.npy", np.full(3, SENTINEL, np.int64))
    (d / "link_out.npy").symlink_to(root / "outside.npy")
    (d / "loop.npy").symlink_to(d / "loop.npy")
    (d / "sub").mkdir(exist_ok=True)
    os.mkfifo(d / "fifo.npy")


def _fix_names(x: Any, root: Path) -> Any:
    if isinstance(x, dict):
        return {k: _fix_names(v, root) for k, v in x.items()}
    if isinstance(x, list):
        return [_fix_names(v, root) for v in x]
    if x == "OUTSIDE_ABS":
        return str(root / "outside.npy")
    return x


@st.composite
def damage(draw) -> dict[str, Any]:
    """One mutation of a saved checkpoint directory (applied by ``_apply``); files and JSON
    paths are drawn as indices, mapped onto the directory's listing when applied."""
    kind = draw(st.sampled_from(["truncate", "flip", "append", "json_edit", "json_deep", "npy_dtype", "npy_header",
                                 "symlink_file", "remove"]))
    return {"kind": kind, "file": draw(st.integers(0, 10**6)), "path": draw(st.integers(0, 10**6)),
            "value": draw(node) if kind == "json_edit" else None,
            "depth": draw(st.sampled_from([250, 5000, 100_000])), "where": draw(st.sampled_from(["root", "tree"])),
            "pos": draw(st.floats(0, 1)), "bytes": draw(st.binary(min_size=1, max_size=8)),
            "dtype": draw(st.sampled_from(NPY_DTYPES)),
            "shape": draw(st.sampled_from([(0,), (1,), (7,), (2, 3), (10**12,), (2**62, 4)]))}


def _apply(d: Path, root: Path, m: dict[str, Any], files: list[str], json_files: list[str]) -> bool:
    """Damage ``d`` as ``m`` says; True when the damage must be refused (it changed what a
    checkpoint says in a way the format records: sizes, file names, JSON structure)."""
    k = m["kind"]
    name = (json_files if k in ("json_edit", "json_deep") else files)[m["file"] % len(json_files if k in ("json_edit", "json_deep") else files)]
    m["name"] = name
    p = d / name
    if k == "json_edit":
        obj = json.loads(p.read_text())
        paths = _paths(obj)
        m["at"] = paths[m["path"] % len(paths)]
        p.write_text(json.dumps(_set(obj, m["at"], _fix_names(m["value"], root))))
        return False
    if k == "json_deep":
        text = p.read_text()
        if m["where"] == "root":
            p.write_text("[" * m["depth"] + text + "]" * m["depth"])
        else:
            obj = json.loads(text)
            obj["tree"] = None
            inner = '{"__list__": [' * m["depth"] + "1" + "]}" * m["depth"]
            p.write_text(json.dumps(obj).replace('"tree": null', '"tree": ' + inner))
        # meta.json has no "tree": there a deep value under an unread key may load (or be refused)
        return m["where"] == "root" or name.endswith("state.json")
    b = p.read_bytes()
    if k == "truncate":
        n = int(m["pos"] * len(b))
        p.write_bytes(b[:n])
        return n < len(b)
    if k == "flip":
        bb = bytearray(b)
        i = min(int(m["pos"] * len(b)), len(b) - 1)
        bb[i:i + len(m["bytes"])] = m["bytes"]
        p.write_bytes(bytes(bb))
        return False  # an edit inside the data of an array is not detectable: the format has no checksums
    if k == "append":
        p.write_bytes(b + m["bytes"])
        return p.suffix == ".npy"
    if k == "npy_dtype" and p.suffix == ".npy":
        a = np.load(p, allow_pickle=False)
        try:
            new = a.astype(m["dtype"])
        except (ValueError, TypeError, OverflowError):
            new = np.zeros(a.shape, m["dtype"])
        np.save(p, new, allow_pickle=False)
        return False  # refused for a tensor (its dtype is recorded), not for an array (the format records none)
    if k == "npy_header" and p.suffix == ".npy":  # a header that lies about the shape; the data stays
        a = np.load(p, allow_pickle=False)
        buf = io.BytesIO()
        np.lib.format.write_array_header_1_0(buf, {"descr": np.lib.format.dtype_to_descr(a.dtype),
                                                   "fortran_order": False, "shape": m["shape"]})
        p.write_bytes(b"\x93NUMPY\x01\x00" + buf.getvalue() + a.tobytes())
        return int(np.prod(m["shape"], dtype=object)) != a.size
    if k == "symlink_file":
        p.unlink()
        p.symlink_to(root / "outside.npy")
        return True
    if k == "remove":
        p.unlink()
        return True
    return False


def _walk(x: Any) -> list[Any]:
    if isinstance(x, dict):
        return [y for v in x.values() for y in _walk(v)]
    if isinstance(x, (list, tuple)):
        return [y for v in x for y in _walk(v)]
    return [x]


def _no_sentinel(x: Any) -> None:
    for leaf in _walk(x):
        if isinstance(leaf, torch.Tensor):
            leaf = leaf.float().numpy() if leaf.dtype == torch.bfloat16 else leaf.numpy()
        if isinstance(leaf, np.ndarray) and leaf.dtype.kind in "iuf" and leaf.dtype.itemsize >= 4 and leaf.size:
            assert not np.any(leaf == SENTINEL), "an array from outside the checkpoint directory was loaded"


def _one_error(fn, d: Path, target: str) -> Any:
    """``fn()``, which must succeed or raise one CheckpointError naming a file of ``d``."""
    COUNTS[target] += 1
    try:
        return fn()
    except CheckpointError as e:
        COUNTS[target + " (refused)"] += 1
        msg = str(e)
        assert d.name in msg, f"error does not name the checkpoint's file: {msg}"
        assert "\n" not in msg.strip() or len(msg) < 2000
        return e


# =============================================================================================
# load_state
# =============================================================================================
def _state() -> dict[str, Any]:
    g = torch.Generator().manual_seed(0)
    return {"q": {"w": torch.randn(4, 3, generator=g), "b": torch.zeros(3, dtype=torch.bfloat16)},
            "replay": {"obs": np.arange(24, dtype=np.uint8).reshape(6, 4), "done": np.array([True, False] * 3),
                       "r": np.linspace(0, 1, 6)},
            "rng": np.random.default_rng(1).bit_generator.state, "steps": (1, 2, [3, None]),
            "eps": float("nan"), "name": "dqn", "ids": torch.arange(5)}


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, float) and np.isnan(a):
        return isinstance(b, float) and np.isnan(b)
    return type(a) is type(b) and a == b


@pytest.fixture(scope="module")
def base_state(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz_ck") / "ckpt"
    save_state(d, _state())
    assert _equal(load_state(d), _state())
    files = sorted(p.name for p in d.iterdir())
    return d, files, ["state.json"]


def _copy(src: Path) -> tuple[Path, Path]:
    root = Path(tempfile.mkdtemp(prefix="fz"))
    d = root / "ckpt"
    shutil.copytree(src, d, symlinks=True)
    return root, d


def _check_state(base_state, m: dict[str, Any]) -> None:
    src, files, json_files = base_state
    root, d = _copy(src)
    try:
        _hostile_files(root, d)
        must_fail = _apply(d, root, m, files, json_files)
        for mmap in (False, True):
            out = _one_error(lambda: load_state(d, mmap=mmap), d, "state")
            if not isinstance(out, CheckpointError):
                _no_sentinel(out)
                assert not must_fail, f"damage {m['kind']} of {m['name']} loaded without an error"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_load_state_fuzz(base_state):
    fuzz(_check_state, FAST["state"], base_state, m=damage())


# =============================================================================================
# The transformer's model directories and training checkpoints
# =============================================================================================
TINY = ModelConfig(n_actions=3, obs_n=9, grid_shape=(3, 3), context=8, n_layer=1, n_head=2, d_model=8)


@pytest.fixture(scope="module")
def base_transformer(tmp_path_factory):
    torch.manual_seed(0)
    model = ADTransformer(TINY)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for p in model.parameters():  # one optimizer step, so AdamW has moments to save
        p.grad = torch.ones_like(p)
    opt.step()
    root = tmp_path_factory.mktemp("fuzz_tf")
    configs = {"model": TINY.to_dict(), "train": {"steps": 1}, "data": {"env_id": "x"}}
    save_checkpoint(root / "ckpt", model=model, optimizer=opt, step=1, configs=configs, extra={"log_accumulators": {"n": 0}})
    export_model(model, root / "model", configs)
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    files = sorted(str(p.relative_to(root / "ckpt")) for p in (root / "ckpt").rglob("*") if p.is_file())
    json_files = [META, f"{TRAIN_STATE}/state.json"]
    return root / "ckpt", files, json_files, sd


def _lying_weights(d: Path, how: int) -> None:
    """Weights of the wrong dtype or shape, or an extra / missing tensor, with the sha256 in
    meta.json recomputed: only the reader's own checks can refuse them."""
    sd = load_file(str(d / WEIGHTS))
    k = sorted(sd)[how % len(sd)]
    if how % 4 == 0:
        sd[k] = sd[k].double()
    elif how % 4 == 1:
        sd[k] = torch.zeros(*sd[k].shape, 2)
    elif how % 4 == 2:
        sd["extra"] = torch.zeros(1)
    else:
        del sd[k]
    save_file(sd, str(d / WEIGHTS))
    meta = json.loads((d / META).read_text())
    meta["sha256"][WEIGHTS] = sha256_file(d / WEIGHTS)
    (d / META).write_text(json.dumps(meta))


def _lying_config(d: Path, how: int) -> None:
    """A model config in meta.json that does not describe the weights (a huge width among them:
    it must be refused before the model is allocated)."""
    meta = json.loads((d / META).read_text())
    field, value = [("d_model", 2**40), ("n_layer", 10**6), ("context", 16), ("n_actions", 5), ("d_model", 6),
                    ("obs_encoder", "vector"), ("bias", False), ("grid_shape", [1, 9])][how % 8]
    meta["model"][field] = value
    (d / META).write_text(json.dumps(meta))


def _check_transformer(base, m: dict[str, Any]) -> None:
    src, files, json_files, sd = base
    root, d = _copy(src)
    try:
        _hostile_files(root, d)
        kind = m["kind"]
        if kind == "lying_weights":
            _lying_weights(d, m["file"])
            must_fail = True
        elif kind == "lying_config":
            _lying_config(d, m["file"])
            # grid_shape is unused by the table encoder: that lie builds the same model, harmlessly
            must_fail = m["file"] % 8 != 7
        else:
            must_fail = _apply(d, root, m, files, json_files)
        touched_model = kind in ("lying_weights", "lying_config") or m.get("name") in (META, WEIGHTS)
        touched_state = m.get("name", "").startswith(TRAIN_STATE)
        for fn, name in ((lambda: read_meta(d), "read_meta"), (lambda: model_from_checkpoint(d), "model_from_checkpoint"),
                         (lambda: load_model_weights(ADTransformer(TINY), d), "load_model_weights"),
                         (lambda: load_train_state(d), "load_train_state")):
            out = _one_error(fn, d, f"transformer.{name}")
            if isinstance(out, CheckpointError):
                continue
            _no_sentinel(out)
            if name in ("model_from_checkpoint", "load_model_weights") and touched_model and must_fail:
                raise AssertionError(f"{name}: damage {kind} loaded without an error")
            if name == "load_train_state" and touched_state and must_fail:
                raise AssertionError(f"load_train_state: damage {kind} of {m.get('name')} loaded without an error")
            if name == "model_from_checkpoint":
                # a model that loads holds exactly the weights file in the directory (sha256-checked)
                got, disk = out[0].state_dict(), load_file(str(d / WEIGHTS))
                assert got.keys() == disk.keys() and all(torch.equal(got[k], disk[k]) for k in got)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@st.composite
def tf_damage(draw) -> dict[str, Any]:
    m = draw(damage())
    m["kind"] = draw(st.sampled_from([m["kind"]] * 4 + ["lying_weights", "lying_config"]))
    return m


def test_transformer_checkpoint_fuzz(base_transformer):
    fuzz(_check_transformer, FAST["transformer"], base_transformer, m=tf_damage())


# =============================================================================================
# A write that fails midway loses nothing (a full disk after N bytes)
# =============================================================================================
class _Disk:
    """Every file opened for writing through ``open`` shares ``budget`` bytes; the write that
    would pass it writes what fits and raises ENOSPC, as a full disk does."""

    def __init__(self, budget: int):
        self.left = budget
        self.written = 0


class _FullFile:
    def __init__(self, f, disk: _Disk):
        self._f, self._disk = f, disk

    def write(self, b):
        n = len(b)
        if n > self._disk.left:
            self._f.write(b[: self._disk.left])
            self._disk.written += self._disk.left
            self._disk.left = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._disk.left -= n
        self._disk.written += n
        return self._f.write(b)

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self._f.close()

    def __getattr__(self, name):
        return getattr(self._f, name)


def _full_disk(monkeypatch, budget: int) -> _Disk:
    disk = _Disk(budget)
    real_open = builtins.open

    def fake_open(file, mode="r", *a, **kw):
        f = real_open(file, mode, *a, **kw)
        return _FullFile(f, disk) if any(c in mode for c in "wax+") else f

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_open)
    # safetensors writes from Rust: route its bytes through the same disk.
    from safetensors.numpy import save as st_save

    def save_file_via_open(tensors, filename, metadata=None):
        with fake_open(filename, "wb") as f:
            f.write(st_save(tensors, metadata=metadata))

    monkeypatch.setattr(history_store, "save_file", save_file_via_open)
    return disk


def _state2() -> dict[str, Any]:
    s = _state()
    s["q"]["w"] = s["q"]["w"] * 2
    s["replay"]["obs"] = np.ones((50, 4), np.uint8)
    s["steps"] = (9,)
    return s


def _check_disk_state(n: int) -> None:
    COUNTS["disk.save_state"] += 1
    root = Path(tempfile.mkdtemp(prefix="fz"))
    try:
        d = root / "ckpt"
        save_state(d, _state())
        with pytest.MonkeyPatch.context() as mp:
            disk = _full_disk(mp, n)
            try:
                save_state(d, _state2())
                failed = False
            except OSError as e:
                assert e.errno == errno.ENOSPC
                failed = True
        # the previous checkpoint, or the whole new one, never a mixture or nothing
        assert _equal(load_state(d), _state() if failed else _state2()), (n, disk.written)
        assert not (root / "ckpt.old").exists()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _history(T: int, seed: int) -> LearningHistory:
    rng = np.random.default_rng(seed)
    A = 3
    p = rng.dirichlet(np.ones(A), T)
    return LearningHistory.from_arrays(
        obs=rng.integers(0, 5, T), action=np.array([rng.choice(A, p=r) for r in p]), reward=rng.normal(size=T),
        terminated=np.arange(T) % 10 == 9, truncated=np.zeros(T, bool), teacher_probs=p,
        final_obs={9: 4, 19: 0}, snapshots={0: {"w": np.ones(3) * seed}}, metadata={"seed": seed})


def _same_history(a: LearningHistory, b: LearningHistory) -> bool:
    return (len(a) == len(b) and a.metadata == b.metadata
            and all(np.array_equal(np.asarray(getattr(a, c)), np.asarray(getattr(b, c)))
                    for c in ("obs", "action", "reward", "terminated", "truncated", "teacher_probs", "episode")))


def _check_disk_history(n: int, previous: bool) -> None:
    COUNTS["disk.history_save"] += 1
    root = Path(tempfile.mkdtemp(prefix="fz"))
    try:
        d = root / "h"
        old, new = _history(20, 1), _history(40, 2)
        if previous:
            old.save(d)
        with pytest.MonkeyPatch.context() as mp:
            _full_disk(mp, n)
            try:
                new.save(d, overwrite=True)
                failed = False
            except OSError as e:
                assert e.errno == errno.ENOSPC
                failed = True
        if failed and previous:
            assert _same_history(LearningHistory.load(d), old)
        elif failed:
            assert not d.exists()
        else:
            assert _same_history(LearningHistory.load(d), new)
        assert sorted(p.name for p in root.iterdir()) == (["h"] if previous or not failed else []), \
            f"half-written directory left: {sorted(p.name for p in root.iterdir())}"
    finally:
        shutil.rmtree(root, ignore_errors=True)


#: Write budgets (bytes before ENOSPC) that reach past a whole write (checked below).
DISK_STATE = {"n": st.integers(0, 12_000)}
DISK_HISTORY = {"n": st.integers(0, 6_000), "previous": st.booleans()}


def test_save_state_full_disk():
    fuzz(_check_disk_state, FAST["disk_state"], **DISK_STATE)


def test_history_save_full_disk():
    fuzz(_check_disk_history, FAST["disk_history"], **DISK_HISTORY)


def test_found_writer_init_enospc_leaves_no_partial():
    _check_disk_history(0, previous=False)


def test_full_disk_budgets_cover_the_whole_write(tmp_path, monkeypatch):
    """The drawn budgets above reach past a whole write (so both outcomes are exercised)."""
    disk = _full_disk(monkeypatch, 10**9)
    save_state(tmp_path / "c", _state2())
    _history(40, 2).save(tmp_path / "h")
    assert disk.written < 12_000 + 6_000, disk.written


@pytest.mark.slow
def test_fuzz_checkpoints_many(base_state, base_transformer):
    """>= 10^4 cases over the checkpoint readers and writers; prints the counts per target."""
    COUNTS.clear()
    fuzz(_check_state, SLOW["state"], base_state, m=damage())
    fuzz(_check_transformer, SLOW["transformer"], base_transformer, m=tf_damage())
    fuzz(_check_disk_state, SLOW["disk_state"], **DISK_STATE)
    fuzz(_check_disk_history, SLOW["disk_history"], **DISK_HISTORY)
    print("\nfuzz cases by target:", dict(sorted(COUNTS.items())))
    assert sum(v for k, v in COUNTS.items() if "(refused)" not in k) >= 10_000
