"""The compiled interpreter kernels (numba) = the numpy interpreter = the reference semantics.

* ``vexp`` / ``vlog`` (the branch-free exp and log the kernels vectorise) are within 1 ulp of
  numpy's over their whole working range;
* a TD engine on the compiled path and one on the numpy path, fed the same Dark Room and Chain
  histories (terminal steps, truncations, pending SARSA updates), keep value tables equal to
  1e-12 and give the same log-likelihoods and predictive mixes (1e-12);
* a ``Mixture`` with the compiled engines predicts a history as the numpy one does.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import envs  # noqa: F401
from learners.solomonoff import kernels as K
from learners.solomonoff.enumerate import enumerate_programs
from learners.solomonoff.grammar import Grammar
from learners.solomonoff.interpreter import TDEngine
from learners.solomonoff.hypotheses import td_arrays_from_space
from learners.solomonoff.interpreter import base as engine_base
from learners.solomonoff.mixture import Mixture
from learners.solomonoff.probe import EnvProfile, probe_histories

SM = 2.0 ** -10


def _ulps(x: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return np.abs(x - ref) / np.spacing(np.abs(ref))


def test_vexp_within_one_ulp():
    rng = np.random.default_rng(0)
    x = np.concatenate([-rng.random(400_000) * 708.0, (rng.random(200_000) - 0.5) * 4.0,
                        rng.random(100_000) * 709.0, -rng.random(10_000) * 1e-8, [0.0, -0.0, -708.0, 709.0]])
    out = np.empty_like(x)
    K.vexp_array(x, out)
    ref = np.exp(x.astype(np.longdouble))
    err = np.abs(out.astype(np.longdouble) - ref) / np.spacing(np.exp(x))
    assert float(err.max()) <= 1.0
    assert out[-4] == 1.0 and out[-3] == 1.0          # exp(0) is exact: softmax argmax terms
    below = np.array([-708.5, -745.0, -1e4, -np.inf])
    K.vexp_array(below, o := np.empty(4))
    assert (o == 0.0).all()                             # flushed, never a subnormal or NaN


def test_vlog_within_one_ulp():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.random(400_000), 2.0 ** rng.uniform(-1000, 1000, 200_000), [1.0, 2.0, 0.5, 1e-300]])
    out = np.empty_like(x)
    K.vlog_array(x, out)
    ref = np.log(x.astype(np.longdouble))
    err = np.abs(out.astype(np.longdouble) - ref) / np.spacing(np.abs(np.log(x)) + 1e-300)
    assert float(err[x != 1.0].max()) <= 1.0
    assert out[-4] == 0.0


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=-708.0, max_value=709.0))
def test_vexp_property(x):
    o = np.empty(1)
    K.vexp_array(np.array([x]), o)
    assert abs(o[0] - np.exp(x)) <= 2 * np.spacing(np.exp(x))


def _engines(S, A, budget, seed, table_block=None, variants=()):
    g = Grammar(S, A, variants=variants)
    sp = enumerate_programs(g, budget, kinds=["TD"])
    idx = np.random.default_rng(seed).choice(sp.n_td, size=min(3000, sp.n_td), replace=False)
    t, v = td_arrays_from_space(sp, idx)
    return TDEngine(g, t, v, SM, backend="numpy"), TDEngine(g, t, v, SM, backend="numba", table_block=table_block)


@pytest.mark.parametrize("S,A,budget,threads,variants", [(6, 5, 19, 1, ()), (4, 2, 17, 1, ()), (5, 3, 18, 2, ()),
                                                         (2, 11, 17, 2, ()), (3, 4, 18, 2, ("act_first", "truncation"))])
def test_compiled_engine_equals_numpy_engine(S, A, budget, threads, variants):
    """Every entry point of the compiled engine (the fused ``step``; ``mix_and_evidence`` then
    ``advance``; ``mix_logw``, ``add_loglik``, ``advance``) against the numpy engine."""
    ref, fast = _engines(S, A, budget, S * A, table_block=64, variants=variants)   # several blocks, split between threads
    assert fast.k_nblocks > 4
    if variants:   # act-first Q-learning / expected SARSA tables (deferred without a Q(s',a') term), and
        assert np.any(fast.deferred & (fast.cn == 0))     # tables that treat a truncation as terminal
        assert np.any((fast.gamma_trunc == 0) & (fast.gamma > 0))
    fast.set_threads(threads)
    assert {"eps", "softmax", "count_bonus"} <= set(fast.groups)
    prof = EnvProfile(S, A, episode_len=7, can_terminate=True, rewards=(0.0, 0.5, 1.0))
    probe = probe_histories(prof, n=1, length=600, seed=S)[0]
    rng = np.random.default_rng(0)
    lw_ref = rng.normal(size=ref.n) * 5.0
    lw_fast = lw_ref.copy()
    for k in range(len(probe)):
        s, a = int(probe.obs[k]), int(probe.action[k])
        ref.prepare(s)
        fast.prepare(s)
        M = float(lw_ref.max())
        w = np.exp(lw_ref - M)
        mix_ref, Z_ref = ref.mix(w), float(w.sum())
        tr = (float(probe.reward[k]), int(probe.next_obs[k]), bool(probe.terminated[k]), bool(probe.truncated[k]))
        if k % 3 == 0:
            Z, mix, mx = fast.step(s, a, *tr, lw_fast, M)
        elif k % 3 == 1:
            Z, mix, mx = fast.mix_and_evidence(a, lw_fast, M)
        else:
            Z, mix = fast.mix_logw(lw_fast, M)
            mx = fast.add_loglik(a, lw_fast)
        lw_ref += ref.loglik(a)
        np.testing.assert_allclose(mix / Z, mix_ref / Z_ref, rtol=0, atol=1e-12)
        np.testing.assert_allclose(lw_fast, lw_ref, rtol=1e-13, atol=1e-12)
        assert mx == lw_fast.max()
        ref.advance(s, a, *tr)
        if k % 3:
            fast.advance(s, a, *tr)
        np.testing.assert_allclose(fast.Q, ref.Q, rtol=1e-12, atol=1e-12)
        assert (fast.N == ref.N).all()


# The default SARSA teacher lies outside this 16-bit mixture (the test compares backends, not
# identification), so the mixture's misspecification check fires, as it should.
@pytest.mark.filterwarnings("ignore::learners.solomonoff.misspecification.MisspecificationWarning")
def test_mixture_compiled_equals_numpy(monkeypatch):
    import gymnasium as gym

    from learners.recorder import record
    from learners.teachers.base import make_teacher

    kw = {"size": 5, "goal": [1, 3]}
    env = gym.make("hypospace/DarkRoom-v0", **kw)
    hist = record(make_teacher("sarsa", env.observation_space, env.action_space, seed=2), "hypospace/DarkRoom-v0",
                  env_kwargs=kw, episodes=15, seed=2)
    fast = Mixture.for_env("hypospace/DarkRoom-v0", 16.0, env_kwargs=kw)
    assert any(getattr(g.engine, "backend", "") == "numba" for g in fast.groups)
    monkeypatch.setattr(engine_base, "DEFAULT_BACKEND", "numpy")
    ref = Mixture.for_env("hypospace/DarkRoom-v0", 16.0, env_kwargs=kw)
    assert all(getattr(g.engine, "backend", "numpy") == "numpy" for g in ref.groups)
    monkeypatch.undo()
    two = Mixture.for_env("hypospace/DarkRoom-v0", 16.0, env_kwargs=kw, threads=2)
    td = [g.engine for g in two.groups if g.name == "td"]
    assert len(td) == 1 and td[0].threads == 2       # one compiled engine splitting its blocks
    p_fast, p_ref, p_two = fast.predict_history(hist), ref.predict_history(hist), two.predict_history(hist)
    np.testing.assert_allclose(p_fast, p_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(p_two, p_fast, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fast.posterior(), ref.posterior(), rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(two.posterior(), fast.posterior(), rtol=1e-9, atol=1e-15)
    fast.check_bound()
    two.check_bound()


def _predict_in_child(mix, hist, q):
    q.put(float(mix.predict_history(hist).sum()))


def test_threaded_mixture_works_in_a_forked_child():
    """Worker-thread pools do not survive fork; a child re-creates them instead of waiting forever."""
    import multiprocessing as mp

    import gymnasium as gym

    from learners.recorder import record
    from learners.teachers.base import make_teacher

    kw = {"size": 9, "goal": [1, 7]}
    env = gym.make("hypospace/DarkRoom-v0", **kw)
    hist = record(make_teacher("q_learning", env.observation_space, env.action_space, seed=0), "hypospace/DarkRoom-v0",
                  env_kwargs=kw, episodes=3, seed=0)
    mix = Mixture.for_env("hypospace/DarkRoom-v0", 19.0, env_kwargs=kw, threads=2)
    td = [g.engine for g in mix.groups if g.name == "td"][0]
    assert td.k_nblocks > 1                       # the threaded path runs
    mix.predict_history(hist)                     # its pools exist in the parent
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_predict_in_child, args=(mix, hist, q), daemon=True)
    p.start()
    p.join(timeout=60)
    if p.is_alive():          # hung on a pool inherited from the parent
        p.kill()
    assert p.exitcode == 0
    assert abs(q.get(timeout=5) - len(hist)) < 1e-9   # every predictive sums to 1
