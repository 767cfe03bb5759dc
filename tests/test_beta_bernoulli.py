"""Thompson sampling's exact action probabilities (``learners.beta_bernoulli``), shared by the
bandit teacher and the mixture's Thompson engine, against independent references: a closed form
for two arms, adaptive quadrature, a brute-force grid and sampling."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, special, stats

from learners.beta_bernoulli import thompson_probs

# ---------------------------------------------------------------------------------------------
# Exact Thompson probabilities
# ---------------------------------------------------------------------------------------------
def p_b_beats_a(aA, bA, aB, bB):
    """Closed form P(X_B > X_A), integer Beta parameters (Evan Miller's formula)."""
    i = np.arange(aB)
    logs = (special.betaln(aA + i, bA + bB) - np.log(bB + i) - special.betaln(1 + i, bB)
            - special.betaln(aA, bA))
    return float(np.exp(logs).sum())


def fine_grid_probs(a, b, panels=8_000):
    """Brute force: composite 4-point Gauss-Legendre on a fine uniform grid over the whole
    region any posterior lives in, with the Beta pdf and ``betainc`` cdf at every node (no tail
    cuts per arm, no union of per-arm panels, no cumulative cdfs)."""
    lo = special.betaincinv(a, b, 1e-14).min()
    hi = special.betainccinv(a, b, 1e-14).max()
    gx, gw = np.polynomial.legendre.leggauss(4)
    e = np.linspace(lo, hi, panels + 1)
    h = np.diff(e)
    x = (e[:-1, None] + h[:, None] * (gx + 1) / 2).ravel()
    w = (h[:, None] * gw / 2).ravel()
    F = special.betainc(a[:, None], b[:, None], x[None])
    f = stats.beta.pdf(x[None], a[:, None], b[:, None])
    ones = np.ones((1, x.size))
    others = (np.cumprod(np.vstack([ones, F[:-1]]), 0)                  # arms before i
              * np.cumprod(np.vstack([ones, F[:0:-1]]), 0)[::-1])      # arms after i
    return (f * others) @ w


def test_thompson_two_arms_closed_form():
    cases = [(1, 1, 2, 1), (3, 7, 5, 4), (3000, 2000, 2950, 2050), (40, 9000, 1, 200), (600, 400, 61, 39)]
    for aA, bA, aB, bB in cases:
        p = thompson_probs(np.array([aA, aB], float), np.array([bA, bB], float))
        assert p[1] == pytest.approx(p_b_beats_a(aA, bA, aB, bB), abs=1e-9), (aA, bA, aB, bB)


def test_thompson_matches_adaptive_quadrature():
    a = np.array([5.0, 20, 3, 1, 12])
    b = np.array([10.0, 5, 3, 8, 4])
    ref = []
    for i in range(5):
        def g(x, i=i):
            others = [special.betainc(a[j], b[j], x) for j in range(5) if j != i]
            return stats.beta.pdf(x, a[i], b[i]) * np.prod(others)
        ref.append(integrate.quad(g, 0, 1, epsabs=1e-13, epsrel=1e-12, limit=500)[0])
    np.testing.assert_allclose(thompson_probs(a, b), ref, rtol=0, atol=1e-10)


@pytest.mark.parametrize("case", ["64 arms, thousands of pulls, close means", "sharp inside wide",
                                  "20 arms mixed", "ties and a dominated arm"])
def test_thompson_matches_brute_force(case):
    rng = np.random.default_rng(7)
    if case.startswith("64"):
        n = rng.integers(500, 5000, 64)
        s = rng.binomial(n, 0.6 + rng.normal(0, 0.01, 64))
        a, b = 1.0 + s, 1.0 + n - s
    elif case == "sharp inside wide":
        a = np.array([2.0, 3000, 2600, 1, 40, 700])
        b = np.array([3.0, 3000, 3400, 1, 60, 300])
    elif case == "20 arms mixed":
        n = rng.integers(0, 3000, 20)
        s = rng.binomial(n, rng.random(20))
        a, b = 1.0 + s, 1.0 + n - s
    else:
        a = np.array([30.0, 30, 30, 2, 29, 1])
        b = np.array([10.0, 10, 10, 300, 11, 1])
    p = thompson_probs(a, b)
    ref = fine_grid_probs(a, b)
    assert p.sum() == pytest.approx(1.0, abs=1e-15) and (p >= 0).all()
    np.testing.assert_allclose(p, ref, rtol=0, atol=1e-6)
    assert np.abs(p - ref).max() < 1e-9  # in fact far better than the 1e-6 asked for
    if case.startswith("ties"):
        assert p[0] == p[1] == p[2]  # bit-identical for equal posteriors


def test_thompson_matches_sampling_argmax():
    """Drawing from thompson_probs is the same distribution as sampling every posterior and
    taking the argmax (Monte Carlo, 10^6 samples, 5 standard errors)."""
    rng = np.random.default_rng(3)
    a = np.array([8.0, 12, 3, 30, 25, 1, 0.5])
    b = np.array([4.0, 7, 2, 20, 17, 1, 0.5])  # includes a Jeffreys-like posterior
    p = thompson_probs(a, b)
    n = 1_000_000
    freq = np.bincount(rng.beta(a, b, size=(n, a.size)).argmax(1), minlength=a.size) / n
    se = np.sqrt(p * (1 - p) / n)
    assert (np.abs(freq - p) < 5 * se + 1e-12).all(), (freq, p)


def test_thompson_many_arms_and_edge_cases():
    assert thompson_probs(np.array([3.0]), np.array([4.0])).tolist() == [1.0]
    p = thompson_probs(np.ones(64), np.ones(64))
    np.testing.assert_allclose(p, 1 / 64, rtol=1e-12)
    # an arm far behind the rest gets (exactly) zero; the rest share the mass
    p = thompson_probs(np.array([5000.0, 1, 4990]), np.array([5000.0, 3000, 5010]))
    assert p[1] == 0.0 and p.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError):
        thompson_probs(np.array([1.0, 0.0]), np.array([1.0, 1.0]))
