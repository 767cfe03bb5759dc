"""Beta-Bernoulli posterior sampling: the exact probability that each arm's posterior sample is
the largest (``thompson_probs``).

Thompson sampling on Bernoulli arms draws one sample from every arm's ``Beta(alpha_i, beta_i)``
posterior and pulls the arm with the largest; its action distribution is
``p_i = int f_i(x) prod_{j != i} F_j(x) dx``. The bandit teacher acts by it and the mixture's
Thompson programs are scored by it, so both use this one function (a teacher and an imitator
that disagreed here would be told apart by rounding, not by behaviour).
"""
from __future__ import annotations

import numpy as np
from scipy import special

#: Tail mass cut off at each end of every posterior (each p_i is exact to ~A * TAIL).
TAIL = 1e-12
#: Panels per arm across its [TAIL, 1 - TAIL] quantile range, and Gauss-Legendre nodes per panel.
PANELS_PER_ARM = 6
GL_ORDER = 10
_GL_X, _GL_W = np.polynomial.legendre.leggauss(GL_ORDER)
_GL_X = (_GL_X + 1.0) / 2.0  # nodes on [0, 1]
_GL_W = _GL_W / 2.0
#: Geometric refinement towards an endpoint where a posterior density is not smooth
#: (a shape parameter that is not an integer, e.g. a Jeffreys prior): 2^-k, k = 1..GRADED.
GRADED = 48
_ONE_MINUS = 1.0 - 2.0 ** -50


def _integration_matrix(nodes: np.ndarray) -> np.ndarray:
    """``S[i, k] = int_0^{x_i} l_k(t) dt`` for the Lagrange basis ``l_k`` on ``nodes`` in [0, 1]:
    ``S @ f(nodes)`` integrates the interpolant of ``f`` from 0 to every node. Built in the
    Legendre basis (well conditioned at Gauss-Legendre nodes)."""
    Leg = np.polynomial.legendre
    t = 2.0 * nodes - 1.0
    V = Leg.legvander(t, nodes.size - 1)                   # f(nodes) = V @ c
    ints = np.stack([Leg.legval(t, Leg.legint(np.eye(nodes.size)[k], lbnd=-1.0))
                     for k in range(nodes.size)], axis=1)  # int_{-1}^{t_i} P_k
    return 0.5 * ints @ np.linalg.inv(V)                   # dt = 2 dx


_GL_S = _integration_matrix(_GL_X)


def thompson_probs(alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """P(arm i's posterior sample is the largest) for independent ``Beta(alpha_i, beta_i)``.

    ``p_i = int f_i(x) prod_{j != i} F_j(x) dx`` by composite Gauss-Legendre quadrature
    (``GL_ORDER`` nodes per panel) on one partition of [0, 1] shared by all arms:

    * Every posterior's range ``[q(TAIL), q(1 - TAIL)]`` is cut into ``PANELS_PER_ARM`` equal
      panels, and the partition is the union of all arms' panel edges, so it is fine wherever
      any density or cdf changes fast (a wide posterior overlapping a sharp one is integrated
      at the sharp one's scale). Where a shape parameter is not an integer (or < 1) the density
      is not smooth at 0 or 1 and the panels are refined geometrically towards that end.
    * Below ``L = max_j q_j(TAIL)`` every integrand is ``<= TAIL`` (some cdf, or the arm's own
      density, is negligible there), so the domain is ``[L, max_j q_j(1 - TAIL)]``; an arm whose
      upper quantile is below L gets probability 0 (it is < TAIL).
    * Outside its range an arm's cdf is exactly 0 / 1 (within TAIL). Inside, it is
      ``F_j(start of range)`` (one ``betainc``) plus the running integral of ``f_j`` over the
      same nodes (spectral integration within a panel, cumulative sums across panels), which
      is as accurate as the quadrature itself and far cheaper than ``betainc`` at every node.

    Absolute error: ~1e-11 typically and < 1e-8 on every case tried (2-64 arms, up to 20,000
    pulls, sharp posteriors inside wide ones, Jeffreys priors); tests check 1e-6 against
    adaptive quadrature, a closed form and Monte Carlo. The result is renormalised to sum to 1.
    Deterministic, and equal posteriors get bit-identical probabilities. Cost: ~0.3 ms for 10
    arms, ~1 ms for 64 arms on this machine.
    """
    a = np.asarray(alpha, dtype=np.float64)
    b = np.asarray(beta, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape or a.size == 0:
        raise ValueError(f"thompson_probs: alpha and beta must be equal-length 1-d arrays, got {a.shape} {b.shape}")
    if not (np.all(a > 0) and np.all(b > 0) and np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("thompson_probs: Beta parameters must be finite and > 0")
    n = a.size
    if n == 1:
        return np.ones(1)
    # Identical posteriors share everything: work with the distinct ones and their multiplicity.
    ab = np.stack([a, b], axis=1)
    uniq, inverse, mult = np.unique(ab, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    ua, ub = uniq[:, 0], uniq[:, 1]
    lo = special.betaincinv(ua, ub, TAIL)
    # Quantiles within 1e-16 of 1 are not representable; cut there (only a shape parameter
    # < 1 puts more than TAIL of mass so close to 1, and then at most ~1e-8).
    hi = np.minimum(special.betainccinv(ua, ub, TAIL), _ONE_MINUS)
    L = lo.max()
    keep = hi > L  # the others are the largest with probability < TAIL
    pu = np.zeros(ua.size)
    if keep.sum() == 1:
        pu[keep] = 1.0 / mult[keep]
        out = pu[inverse]
        return out / out.sum()
    ua, ub, lo, hi, m_ = ua[keep], ub[keep], np.maximum(lo[keep], L), hi[keep], mult[keep]
    H = hi.max()
    # The shared partition of [L, H].
    steps = np.linspace(0.0, 1.0, PANELS_PER_ARM + 1)
    pieces = [(lo[:, None] + (hi - lo)[:, None] * steps[None, :]).ravel()]
    graded = 2.0 ** -np.arange(1, GRADED + 1)
    rough0 = (ua != np.round(ua)) | (ua < 1)  # density ~ x^(a-1): not smooth at 0
    rough1 = (ub != np.round(ub)) | (ub < 1)
    if rough0.any():
        pieces.append((hi[rough0, None] * graded[None, :]).ravel())
    if rough1.any():
        pieces.append((1.0 - (1.0 - lo[rough1, None]) * graded[None, :]).ravel())
    edges = np.unique(np.clip(np.concatenate(pieces), L, H))
    width = np.diff(edges)                                          # [P]
    x = edges[:-1, None] + width[:, None] * _GL_X[None, :]          # [P, m]
    # Densities of the distinct posteriors at every node, zero outside each one's range.
    logf = ((ua - 1.0)[:, None, None] * np.log(x)[None] + (ub - 1.0)[:, None, None] * np.log1p(-x)[None]
            - special.betaln(ua, ub)[:, None, None])                # [k, P, m]
    mid = edges[:-1] + 0.5 * width
    inside = (mid[None, :] > lo[:, None]) & (mid[None, :] < hi[:, None])   # [k, P]; panels never straddle
    f = np.exp(logf) * inside[:, :, None]
    # cdfs: F(range start) + cumulative integral of f; exactly 1 above the range.
    fw = f * width[None, :, None]
    panel = fw @ _GL_W                                               # [k, P]
    before = np.cumsum(panel, axis=1) - panel                        # integral over earlier panels
    start = special.betainc(ua, ub, lo)
    F = (start[:, None] + before)[:, :, None] + fw @ _GL_S.T         # [k, P, m]
    F = np.where(inside[:, :, None], F, (mid[None, :] >= hi[:, None])[:, :, None].astype(np.float64))
    F = F.reshape(F.shape[0], -1)
    f = f.reshape(F.shape)
    # prod_{j != i} F_j over arms = F_i^(m_i - 1) * prod_{v != u(i)} F_v^(m_v) over distinct
    # posteriors, by exclusive prefix/suffix products (no division, so F = 0 is harmless).
    powered = F if (m_ == 1).all() else F ** m_[:, None]
    ones = np.ones((1, F.shape[1]))
    pre = np.cumprod(np.vstack([ones, powered[:-1]]), axis=0)                # rows < u
    suf = np.cumprod(np.vstack([ones, powered[:0:-1]]), axis=0)[::-1]        # rows > u
    excl = pre * suf
    dup = m_ > 1
    if dup.any():
        excl[dup] *= F[dup] ** (m_[dup, None] - 1)
    w = (width[:, None] * _GL_W[None, :]).ravel()
    pu[keep] = (f * excl) @ w
    out = pu[inverse]
    return out / out.sum()


__all__ = ["thompson_probs"]
