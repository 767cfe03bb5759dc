"""Run independent jobs on a local process pool or as Ray tasks — the same jobs, the same results.

Every job is a top-level function of picklable arguments that reads and writes only the cache
(``$HYPOSPACE_CACHE``) and the study directory, each write atomic; so which process (or
machine) runs a job, and in which order, cannot change what it writes. On a Ray cluster both
directories must be on a shared filesystem (the driver passes them as absolute paths).
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from typing import Any, Callable, Sequence

from tqdm import tqdm

from learners.cache import ENV_VAR, cache_root

EXECUTORS = ("local", "ray")


def _init_worker(cache: str) -> None:
    # One thread per worker process: the pool is the parallelism (2 cores -> 2 workers).
    os.environ[ENV_VAR] = cache
    import torch

    torch.set_num_threads(1)


def _pool_worker_init(cache: str, parent: int) -> None:
    # A killed study must not leave its workers training on: a later --resume would start the same
    # job again beside the orphan, two writers on one cache entry. Linux tells the worker when its
    # parent dies (PR_SET_PDEATHSIG); the pid check closes the race of a parent that died first.
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os._exit(1)
    _init_worker(cache)


class Executor:
    """``map(fn, argument tuples)`` over a local pool (``workers`` processes) or Ray."""

    def __init__(self, kind: str = "local", *, workers: int = 2, ray_address: str | None = None, progress: bool = True):
        if kind not in EXECUTORS:
            raise ValueError(f"executor must be one of {EXECUTORS}, got {kind!r}")
        self.kind, self.workers, self.ray_address, self.progress = kind, max(1, int(workers)), ray_address, progress
        self.cache = str(cache_root().resolve())
        os.environ[ENV_VAR] = self.cache
        self._pool: ProcessPoolExecutor | None = None
        self._ray = None

    def __enter__(self) -> "Executor":
        if self.kind == "ray":
            import ray  # optional extra: pip install -e '.[ray]'

            if not ray.is_initialized():
                kw: dict[str, Any] = {"runtime_env": {"env_vars": {ENV_VAR: self.cache}}, "include_dashboard": False,
                                      "log_to_driver": False}
                if self.ray_address:
                    ray.init(address=self.ray_address, **kw)
                else:
                    ray.init(num_cpus=self.workers, **kw)
            self._ray = ray
        elif self.workers > 1:
            self._pool = ProcessPoolExecutor(self.workers, mp_context=get_context("spawn"),
                                             initializer=_pool_worker_init, initargs=(self.cache, os.getpid()))
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
        if self._ray is not None:
            self._ray.shutdown()

    def map(self, fn: Callable[..., Any], jobs: Sequence[tuple], desc: str) -> list[Any]:
        """Run ``fn(*job)`` for every job; results in the order of ``jobs``."""
        if not jobs:
            return []
        bar = tqdm(total=len(jobs), desc=desc, unit="job", disable=not self.progress, dynamic_ncols=True)
        out: list[Any] = [None] * len(jobs)
        try:
            if self._ray is not None:
                remote = self._ray.remote(num_cpus=1)(fn)
                refs = {remote.remote(*job): i for i, job in enumerate(jobs)}
                pending = list(refs)
                while pending:
                    ready, pending = self._ray.wait(pending, num_returns=1)
                    out[refs[ready[0]]] = self._ray.get(ready[0])
                    bar.update(1)
            elif self._pool is not None:
                futs = {self._pool.submit(fn, *job): i for i, job in enumerate(jobs)}
                for f in as_completed(futs):
                    out[futs[f]] = f.result()
                    bar.update(1)
            else:
                _init_worker(self.cache)
                for i, job in enumerate(jobs):
                    out[i] = fn(*job)
                    bar.update(1)
        finally:
            bar.close()
        return out


__all__ = ["Executor", "EXECUTORS"]
