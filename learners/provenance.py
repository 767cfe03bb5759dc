"""Provenance saved beside every result and recorded history: config, seed, commit, package
versions, machine. It sits below both the recorder and the scripts, so either can stamp what it
writes."""
from __future__ import annotations

import functools
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# numba and llvmlite: the mixture's compiled kernels call llvmlite intrinsics, so their versions
# decide whether (and how exactly) those kernels run.
PACKAGES = ("numpy", "scipy", "torch", "gymnasium", "ale-py", "sympy", "networkx", "safetensors", "numba", "llvmlite")


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    """The commit of the working tree ("+dirty" when it has uncommitted changes), or "unknown"."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10).stdout.strip()
        if not sha:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


@functools.lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    """Python's version and those of the packages results depend on (the installed ones)."""
    out = {"python": sys.version.split()[0]}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            pass
    return out


def run_info(*, seed: Any = None, config: dict[str, Any] | None = None) -> dict[str, Any]:
    """The provenance block written next to results (JSON-safe)."""
    return {
        "seed": seed,
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in (config or {}).items()},
        "commit": git_commit(),
        "versions": package_versions(),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "argv": sys.argv,
    }


__all__ = ["git_commit", "package_versions", "run_info", "PACKAGES"]
