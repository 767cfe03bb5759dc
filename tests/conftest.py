"""Shared fixtures: thread pinning, an isolated cache, the small mixtures tests share."""
from __future__ import annotations

import numba
import pytest
import torch

import envs  # noqa: F401  (registers the hypospace envs)
from learners.cache import ENV_VAR as CACHE_ENV_VAR
from learners.solomonoff.mixture import Mixture


@pytest.fixture
def one_thread():
    """torch and numba on one thread for the test (restored after it). The models and kernels
    the tests run are small: one thread is faster than two, much faster on a loaded machine, and
    the figures do not depend on how the work was split."""
    n_torch, n_numba = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    yield
    torch.set_num_threads(n_torch)
    numba.set_num_threads(n_numba)


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """An empty cache root for the test (``$HYPOSPACE_CACHE`` pointed at a temporary directory),
    so nothing is read from or left in the shared cache."""
    root = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV_VAR, str(root))
    return root


#: The small Dark Room the mixture tests share (4x4, goal in a corner) and its 16-bit space.
DARKROOM4 = ("hypospace/DarkRoom-v0", {"size": 4, "goal": [0, 3]})


@pytest.fixture(scope="session")
def darkroom4_mixture() -> Mixture:
    """The 16-bit mixture for Dark Room 4x4, built once per session (~2 s). Tests condition a
    ``clone()``, never this one."""
    env_id, kw = DARKROOM4
    return Mixture.for_env(env_id, 16, env_kwargs=kw)
