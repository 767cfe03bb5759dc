"""The symbolic bounds evaluate to the numeric ones of theory.bounds, at the mixture's own smoothing
and at random inputs; their expansions and the break-even point say what they claim."""
from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp

from learners.solomonoff.semantics import DEFAULT_SMOOTHING
from theory import bounds as B
from theory import symbolic as S


def _draws(seed, k=40):
    rng = np.random.default_rng(seed)
    for _ in range(k):
        bits = rng.integers(1, 40, size=int(rng.integers(1, 30))).astype(float)
        yield {"L": float(rng.uniform(0, 5000)), "l": float(rng.choice(bits)), "log2Z": B.log2_normaliser(bits),
               "n": int(rng.integers(1, 10**6)), "eps": float(rng.choice([DEFAULT_SMOOTHING, rng.uniform(0, 0.5)]))}


def test_symbolic_per_sequence_bound_equals_the_numeric_bound():
    for v in _draws(0):
        smoothed = B.per_sequence_bound(v["L"], v["l"], v["log2Z"])
        raw = B.per_sequence_bound(v["L"], v["l"], v["log2Z"], n_steps=v["n"], smoothing_eps=v["eps"], smoothed=False)
        assert S.evaluate(S.per_sequence_bound(True), {k: v[k] for k in ("L", "l", "log2Z")}) == pytest.approx(
            float(smoothed), rel=1e-12)
        assert S.evaluate(S.per_sequence_bound(False), v) == pytest.approx(float(raw), rel=1e-12)


def test_symbolic_kl_bounds_equal_the_numeric_bounds():
    for v in _draws(1):
        w = {k: v[k] for k in ("l", "log2Z", "n", "eps")}
        assert S.evaluate(S.expected_kl_bound(), w) == pytest.approx(
            float(B.expected_kl_bound(v["l"], v["log2Z"], v["n"], v["eps"])), rel=1e-12)
        assert S.evaluate(S.mean_kl_bound(), w) == pytest.approx(
            float(B.mean_kl_bound(v["l"], v["log2Z"], v["n"], v["eps"])), rel=1e-12)
        assert S.evaluate(S.smoothing_cost(), {"n": v["n"], "eps": v["eps"]}) == pytest.approx(
            float(B.smoothing_cost_bits(v["n"], v["eps"])), rel=1e-12)


def test_symbolic_normaliser_equals_the_numeric_one_and_is_exact_for_a_prefix_code():
    rng = np.random.default_rng(2)
    for _ in range(20):
        bits = rng.integers(1, 30, size=int(rng.integers(1, 12)))
        assert float(S.log2_normaliser(bits.tolist())) == pytest.approx(B.log2_normaliser(bits), abs=1e-12)
    # a complete prefix code (0, 10, 110, 111): Kraft sum exactly 1, log2 Z exactly 0
    assert sp.simplify(S.log2_normaliser([1, 2, 3, 3])) == 0
    with pytest.raises(ValueError):
        S.log2_normaliser([])


def test_at_the_mixtures_smoothing_the_floor_and_break_even_are_what_the_series_says():
    eps = DEFAULT_SMOOTHING
    per_step = S.evaluate(S.smoothing_cost(), {"n": 1, "eps": eps})
    # first-order term eps / ln 2: 2^-10 / ln 2 = 1.409e-3 bits per step, second order negligible
    assert per_step == pytest.approx(eps / math.log(2), rel=eps)
    assert S.evaluate(S.smoothing_cost_series(2), {"n": 1, "eps": eps}) == pytest.approx(eps / math.log(2))
    series3 = S.evaluate(S.smoothing_cost_series(3), {"n": 1, "eps": eps})
    assert abs(series3 - per_step) < abs(eps / math.log(2) - per_step)
    # break-even: the smoothing cost after n* steps equals the prior bits
    for l, lz in ((20.0, -0.3), (35.0, 0.0)):
        nstar = S.evaluate(S.breakeven_steps(), {"l": l, "log2Z": lz, "eps": eps})
        assert float(B.smoothing_cost_bits(nstar, eps)) == pytest.approx(l + lz, rel=1e-9)
        assert float(B.mean_kl_bound(l, lz, nstar, eps)) == pytest.approx(2 * per_step, rel=1e-9)


def test_bound_with_the_smoothed_loss_is_tighter_than_with_the_raw_loss():
    """For a deterministic program that is always right, bound (1) with its smoothed loss is at
    most bound (2) with raw loss 0, for every eps in (0, 1) and every A >= 1."""
    raw_right = S.per_sequence_bound(False).subs(S.L, 0)
    gap = raw_right - S.per_sequence_bound(True).subs(S.L, S.smoothed_deterministic_loss())
    rng = np.random.default_rng(3)
    for _ in range(50):
        v = {"l": 7.0, "log2Z": -0.1, "n": int(rng.integers(1, 10**5)), "eps": float(rng.uniform(1e-6, 0.99)),
             "A": int(rng.integers(1, 19))}
        assert S.evaluate(gap, v) >= -1e-9
    # and it is exactly the smoothed program's loss the mixture's bound uses: -log2((1-eps) + eps/A)
    assert S.evaluate(S.smoothed_deterministic_loss(), {"n": 1, "eps": DEFAULT_SMOOTHING, "A": 5}) == pytest.approx(
        -math.log2(1 - DEFAULT_SMOOTHING + DEFAULT_SMOOTHING / 5))


def test_evaluate_refuses_unknown_or_missing_symbols():
    with pytest.raises(ValueError):
        S.evaluate(S.per_sequence_bound(), {"L": 1.0, "l": 2.0})
    with pytest.raises(ValueError):
        S.evaluate(S.per_sequence_bound(), {"L": 1.0, "l": 2.0, "log2Z": 0.0, "bits": 3})
