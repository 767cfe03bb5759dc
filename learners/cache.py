"""Where the project caches what it can rebuild (recorded histories, packed stores, trained
models, built mixtures): one root for every cache, set by the ``HYPOSPACE_CACHE`` environment
variable (default ``data/cache`` below the working directory).

    from learners.cache import cache_dir
    root = cache_dir("histories")        # $HYPOSPACE_CACHE/histories, created on demand

Every entry below the root is keyed by a hash of the configuration that determines it and is
written under a temporary name, then renamed, so a killed run never leaves a half entry that a
later run would trust.
"""
from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "HYPOSPACE_CACHE"
DEFAULT = "data/cache"


def cache_root() -> Path:
    """The cache root: ``$HYPOSPACE_CACHE`` or ``data/cache``."""
    return Path(os.environ.get(ENV_VAR) or DEFAULT)


def cache_dir(*parts: str, create: bool = True) -> Path:
    """``cache_root() / parts``, created unless ``create=False``."""
    p = cache_root().joinpath(*parts)
    if create:
        p.mkdir(parents=True, exist_ok=True)
    return p


__all__ = ["ENV_VAR", "cache_root", "cache_dir"]
