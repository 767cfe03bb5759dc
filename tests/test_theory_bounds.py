"""Mixture bounds: they hold for an exact Bayes mixture, fail for a mixture that is not one, and the
expected-KL bound holds on average over sequences drawn from a program in the class."""
from __future__ import annotations

import math

import numpy as np
import pytest

from theory import bounds as B


def _bayes_run(rng, P, bits, teacher, T, eps, n_actions):
    """Exact Bayes mixture over K fixed stochastic predictors (probs P[k, t, a]) on actions drawn
    from predictor ``teacher``. Returns mixture losses, program losses (smoothed), KL per step."""
    K = P.shape[0]
    Ps = (1 - eps) * P + eps / n_actions
    logw = -np.asarray(bits, float) * math.log(2)
    logw -= np.logaddexp.reduce(logw)
    Lmix, Lp, kl = np.zeros(T), np.zeros((K, T)), np.zeros(T)
    lm, lp = 0.0, np.zeros(K)
    for t in range(T):
        w = np.exp(logw - logw.max())
        w /= w.sum()
        xi = w @ Ps[:, t]
        mu = P[teacher, t]
        kl[t] = np.sum(np.where(mu > 0, mu * np.log2(np.where(mu > 0, mu, 1) / xi), 0.0))
        a = rng.choice(n_actions, p=mu)
        lm -= math.log2(xi[a])
        lp -= np.log2(Ps[:, t, a])
        logw += np.log(Ps[:, t, a])
        Lmix[t], Lp[:, t] = lm, lp
    return Lmix, Lp, kl


def test_per_sequence_bound_holds_for_every_program_and_prefix():
    rng = np.random.default_rng(0)
    K, T, A, eps = 12, 300, 3, 2 ** -8
    P = rng.dirichlet(np.ones(A) * 0.3, size=(K, T))
    P[0] = np.eye(A)[rng.integers(A, size=T)]  # a deterministic program, smoothed by eps
    bits = rng.integers(2, 12, size=K).astype(float)
    logZ = B.log2_normaliser(bits)
    assert logZ <= 0
    for teacher in (0, 3):
        Lmix, Lp, _ = _bayes_run(rng, P, bits, teacher, T, eps, A)
        slack = B.bound_slack(Lmix[None, :], Lp, bits[:, None] * 0 + bits[:, None], logZ)
        assert slack.min() >= -1e-9
        # bound (2) against the raw (unsmoothed) teacher's loss
        Lraw = -np.cumsum(np.log2(np.maximum(P[teacher, np.arange(T), :].max(1), 1e-300))) if teacher == 0 else None
        if Lraw is not None:
            assert (B.per_sequence_bound(Lraw, bits[0], logZ, smoothed=False, smoothing_eps=eps) >= Lmix - 1e-9).all()


def test_bound_detects_a_mixture_that_is_not_bayesian():
    rng = np.random.default_rng(1)
    K, T, A = 6, 400, 2
    P = rng.dirichlet(np.ones(A), size=(K, T))
    bits = np.full(K, 3.0)
    _, Lp, _ = _bayes_run(rng, P, bits, 2, T, 0.0, A)
    # a "mixture" that keeps the prior (never updates) loses to the teacher by more than its bits
    Lfrozen = np.cumsum(-np.log2(np.full(T, 0.5)))  # predicts 1/2 always, like the average
    assert B.bound_slack(Lfrozen, Lp, bits[:, None], B.log2_normaliser(bits)).min() < 0


def test_expected_kl_bound_holds_exactly_in_expectation():
    """Exact expectation over every action sequence of a small problem (no Monte Carlo)."""
    rng = np.random.default_rng(2)
    K, T, A, eps = 6, 10, 2, 2 ** -6
    P = rng.dirichlet(np.ones(A), size=(K, T))
    P[1] = np.eye(A)[rng.integers(A, size=T)]
    bits = np.array([1, 2, 3, 4, 5, 5], dtype=float)
    logZ = B.log2_normaliser(bits)
    Ps = (1 - eps) * P + eps / A
    for teacher in (1, 4):
        exp_cum = np.zeros(T)  # E[ sum_{s<=t} KL_s ]

        def walk(t, prob, logw, acc):
            if prob == 0.0 or t == T:
                return
            w = np.exp(logw - logw.max()); w /= w.sum()
            xi = w @ Ps[:, t]
            mu = P[teacher, t]
            kl = float(np.sum(np.where(mu > 0, mu * np.log2(np.where(mu > 0, mu, 1) / xi), 0.0)))
            exp_cum[t] += prob * (acc + kl)
            for a in range(A):
                walk(t + 1, prob * mu[a], logw + np.log(Ps[:, t, a]), acc + kl)

        walk(0, 1.0, -bits * math.log(2), 0.0)
        bound = B.expected_kl_bound(bits[teacher], logZ, np.arange(1, T + 1), eps)
        assert (exp_cum <= bound + 1e-12).all()
        assert exp_cum[-1] > 0.05 * bound[-1]  # not vacuous: the KL is a visible part of the bound
    assert B.mean_kl_bound(bits[4], logZ, T, eps) == pytest.approx(B.expected_kl_bound(bits[4], logZ, T, eps) / T)


def test_helpers():
    assert B.merged_bits([3, 3]) == pytest.approx(2.0)
    assert B.levin_kt(10, 8) == pytest.approx(13)
    assert B.smoothing_cost_bits(100, 0.0) == 0
    with pytest.raises(ValueError):
        B.log2_normaliser([])
    with pytest.raises(ValueError):
        B.smoothing_cost_bits(1, 1.0)
