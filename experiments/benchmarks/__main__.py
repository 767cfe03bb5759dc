"""Benchmarks: ``python -m experiments.benchmarks NAME [--json] [options]``.

Each benchmark is a module ``experiments/benchmarks/NAME.py`` exposing

    def add_arguments(parser: argparse.ArgumentParser) -> None   # optional
    def run(args: argparse.Namespace) -> dict                      # figures + references

and measures its figure *and* the reference it is compared with in the same run, so the ratio
is meaningful on whatever machine runs it. Output is one JSON object (``--json``) or a table.
"""
from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
from pathlib import Path

import experiments.benchmarks as _pkg
from experiments.cli import UsageError, fail
from learners.provenance import run_info


def available() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules([str(Path(_pkg.__file__).parent)]) if not m.name.startswith("_"))


def main(argv: list[str] | None = None) -> int:
    names = available()
    argv = list(sys.argv[1:] if argv is None else argv)
    top = argparse.ArgumentParser(
        prog="python -m experiments.benchmarks",
        description="Run one benchmark; print its figures and the reference measured in the same run.",
        epilog="benchmarks: " + ", ".join(names) + ".  `python -m experiments.benchmarks NAME --help` for its options.",
    )
    top.add_argument("name", choices=names, metavar="NAME", help="benchmark to run: " + ", ".join(names))
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in names:
        try:
            top.parse_args(argv[:1] or ["--help"])
        except SystemExit as e:
            return int(e.code or 0)
    name, rest = argv[0], argv[1:]
    mod = importlib.import_module(f"experiments.benchmarks.{name}")
    p = argparse.ArgumentParser(prog=f"python -m experiments.benchmarks {name}", description=(mod.__doc__ or "").strip().splitlines()[0] if mod.__doc__ else None)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    if hasattr(mod, "add_arguments"):
        mod.add_arguments(p)
    args = p.parse_args(rest)
    try:
        figures = mod.run(args)
    except UsageError as e:    # bad values the parser cannot check: one line, exit 2
        fail(p.prog, str(e))
    result = {"benchmark": name, **figures, "run": run_info(seed=getattr(args, "seed", None), config=vars(args))}
    if args.json:
        print(json.dumps(result, indent=1, default=float))
    else:
        for k, v in result.items():
            if k != "run":
                print(f"{k:40s} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
