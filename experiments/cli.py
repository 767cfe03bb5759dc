"""Small pieces every script shares: typed config dataclasses as argparse flags, one-line errors
with exit code 2, and atomic result files with their provenance."""
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
