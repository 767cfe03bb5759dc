"""Small pieces every script shares: typed config dataclasses as argparse flags, one-line errors
with exit code 2, atomic result files, the ``--task SPLIT:I`` selector and the learning-curve
summary printed after a recording."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import types
import typing
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

# Re-exported: the scripts write their results through the one atomic JSON writer.
from learners.files import write_json_atomic


class UsageError(Exception):
    """Bad input from the command line: reported in one line, exit code 2."""


def fail(prog: str, message: str) -> NoReturn:
    print(f"{prog}: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _base_type(tp: Any) -> Any:
    """``int | None`` -> int; ``Literal[...]`` stays; plain types stay."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _base_type(args[0]) if len(args) == 1 else str
    return tp


def add_config_arguments(parser: argparse.ArgumentParser | Any, config_cls: type, *, prefix: str = "") -> list[str]:
    """Add ``--field-name`` for every field of a config dataclass (help from field metadata).

    Returns the dests added. Values left unset stay ``None`` so the dataclass default applies."""
    hints = typing.get_type_hints(config_cls)
    dests = []
    for f in dataclasses.fields(config_cls):
        if not f.init:
            continue
        tp = _base_type(hints.get(f.name, str))
        help_ = f.metadata.get("help", "")
        default = f.default if f.default is not dataclasses.MISSING else (f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        flag = "--" + prefix + f.name.replace("_", "-")
        dest = prefix.replace("-", "_") + f.name
        kw: dict[str, Any] = {"dest": dest, "default": None, "help": f"{help_} (default: {default})"}
        if typing.get_origin(tp) is typing.Literal:
            kw["choices"] = list(typing.get_args(tp))
            kw["type"] = type(kw["choices"][0])
        elif "choices" in f.metadata:
            kw["choices"] = list(f.metadata["choices"])
        elif tp is bool:
            kw["action"] = argparse.BooleanOptionalAction
        elif tp in (int, float, str):
            kw["type"] = tp
        else:
            kw["type"] = json.loads
            kw["help"] += " [JSON]"
        kw["metavar"] = None if "choices" in kw or kw.get("action") else f.name.upper()
        if kw["metavar"] is None:
            kw.pop("metavar")
        parser.add_argument(flag, **kw)
        dests.append(dest)
    return dests


def config_overrides(args: argparse.Namespace, config_cls: type, *, prefix: str = "") -> dict[str, Any]:
    """The config fields given on the command line."""
    out = {}
    for f in dataclasses.fields(config_cls):
        v = getattr(args, prefix.replace("-", "_") + f.name, None)
        if v is not None:
            out[f.name] = v
    return out


def described_parser(prog: str, doc: str | None, appendix: str = "") -> argparse.ArgumentParser:
    """A script's parser from its module docstring: the first line is the description, the rest
    (examples, outputs) the epilog, followed by ``appendix`` (for example the presets' values)."""
    doc = (doc or "").strip()
    head, _, rest = doc.partition("\n\n")
    epilog = rest + (f"\n\n{appendix}" if appendix else "")
    return argparse.ArgumentParser(prog=prog, description=head.splitlines()[0] if head else None, epilog=epilog or None,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def parse_kv(items: list[str] | None) -> dict[str, Any]:
    """``["goal=[2,7]", "size=9"]`` -> ``{"goal": [2, 7], "size": 9}`` (values parsed as JSON when they parse)."""
    out: dict[str, Any] = {}
    for it in items or []:
        if "=" not in it:
            raise UsageError(f"expected KEY=VALUE, got {it!r}")
        k, v = it.split("=", 1)
        try:
            out[k.strip()] = json.loads(v)
        except json.JSONDecodeError:
            out[k.strip()] = v
    return out


def check_new_output(prog: str, path: str | os.PathLike, *, allow_existing: bool = False) -> Path:
    """An output path must not exist (unless allowed) and its parent must be writable."""
    p = Path(path)
    if p.exists() and not allow_existing:
        fail(prog, f"--out {p} already exists (choose a new path; results are never overwritten)")
    parent = p.resolve().parent
    if not parent.exists():
        try:
            parent.mkdir(parents=True)
        except OSError as e:
            fail(prog, f"cannot create {parent}: {e.strerror}")
    if not os.access(parent, os.W_OK):
        fail(prog, f"cannot write in {parent} (permission denied)")
    return p


def task_from_flag(env_id: str, task: str, split_seed: int, size_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The env kwargs of task ``SPLIT:I`` (e.g. ``train:0``, ``test:3``) of ``env_id``'s seeded
    task split; ``size_kwargs`` (size, n_arms, n) choose the split's env size."""
    # envs.tasks imports gymnasium (~0.25 s): imported on use so every script's --help stays fast.
    from envs.tasks import task_split

    try:
        split, idx = task.split(":")
        idx = int(idx)
    except ValueError:
        raise UsageError(f"--task must look like train:I or test:I, got {task!r}") from None
    if split not in ("train", "test"):
        raise UsageError(f"--task split must be train or test, got {split!r}")
    size = {k: v for k, v in size_kwargs.items() if k in ("size", "n_arms", "n")}
    ts = task_split(env_id, seed=split_seed, **size)
    tasks = getattr(ts, split)
    if not 0 <= idx < len(tasks):
        raise UsageError(f"--task {task}: the {split} split has {len(tasks)} tasks")
    return dict(tasks[idx])


def learning_curve_summary(h: Any, bins: int = 10) -> str:
    """A few lines a script prints about a recorded history: mean return per tenth of the run
    (and vs the optimum when known)."""
    # envs.tasks imports gymnasium (~0.25 s): imported on use so every script's --help stays fast.
    from envs.tasks import optimal_return

    returns = h.episode_returns()
    E = len(returns)
    lines = [f"{len(h)} steps, {E} episodes"]
    meta = h.metadata
    try:
        opt = optimal_return(meta["env_id"], **meta.get("env_kwargs", {}))
        if meta["env_id"] == "hypospace/Bandit-v0":
            opt = None  # per-pull optimum; returns here are per episode = per pull, shown as is
    except Exception:
        opt = None
    edges = np.linspace(0, E, min(bins, E) + 1).astype(int)
    lines.append("episodes        mean return" + ("   % of optimal" if opt else ""))
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = float(np.mean(returns[lo:hi]))
        lines.append(f"{lo:6d}-{hi - 1:<6d}  {m:11.3f}" + (f"   {100 * m / opt:12.1f}" if opt else ""))
    if opt:
        lines.append(f"optimal return {opt:.3f}")
    return "\n".join(lines)
