"""Regret bounds of a Bayes mixture over programs, as pure functions drawn over measured curves.

Setting. Programs p (agent programs of ``learners.solomonoff``) each give a distribution
``p(a_t | h_<t)`` over the next action of the teacher given the history so far (observations and
rewards come from the environment and are the same under every program, so only actions are
predicted). Each program has a description length ``l(p)`` bits from a prefix-free code, so
``Z = sum_p 2^-l(p) <= 1`` (Kraft) over the enumerated programs, and the mixture is

    xi(a_t | h_<t) = sum_p w_p(t) p(a_t | h_<t),   w_p(0) = 2^-l(p) / Z,

with the Bayes posterior ``w_p(t) ∝ w_p(0) prod_{s<t} p(a_s | h_<s)``. Deterministic programs are
smoothed: the mixture runs ``p_eps = (1 - eps) p + eps / A`` so that no likelihood is ever 0.

Per-sequence bound (every sequence, no expectation). For any enumerated program p and every n,

    L_xi(n) <= L_{p_eps}(n) + l(p) + log2 Z                                       (1)
            <= L_p(n) + l(p) + log2 Z + n log2(1 / (1 - eps))                      (2)

where ``L_q(n) = -sum_{t<n} log2 q(a_t | h_<t)`` is the cumulative log-loss in bits; (1) because
``xi(a_<n) >= w_p(0) p_eps(a_<n)``, (2) because ``p_eps >= (1 - eps) p`` pointwise. ``log2 Z <= 0``
tightens the bound. Programs merged as equivalent carry the sum of their weights
(``l(class) = -log2 sum 2^-l(p)``), which only tightens it. Under a speed prior the lengths are
``l(p) + log2 steps(p)`` (Levin's Kt) and Z is the normaliser of those weights.

Expected-KL bound (in expectation over the teacher's own actions, when the teacher is the
unsmoothed program mu in the class):

    E_mu[ sum_{t<n} KL(mu_t || xi_t) ] = E_mu[ log2 mu(a_<n) / xi(a_<n) ]
                                       <= l(mu) + log2 Z + n log2(1 / (1 - eps)).    (3)

So the mean KL per step over n steps is at most ``(l(mu) + log2 Z) / n + log2(1/(1-eps))``: it
decays like 1/n to the smoothing floor. Both bounds are in bits.
"""
from __future__ import annotations

import math

import numpy as np


def log2_normaliser(bits) -> float:
    """log2 of ``Z = sum 2^-bits`` over the programs of a mixture (<= 0 for a prefix-free code)."""
    b = np.asarray(bits, dtype=np.float64).ravel()
    if b.size == 0:
        raise ValueError("log2_normaliser of an empty set of programs")
    m = b.min()
    return float(-m + np.log2(np.sum(np.exp2(m - b))))


def merged_bits(bits) -> float:
    """Description length of a class of equivalent programs: ``-log2 sum 2^-bits``."""
    return -log2_normaliser(bits)


def smoothing_cost_bits(n_steps, smoothing_eps: float):
    """Worst-case extra log-loss of ``(1 - eps) p + eps/A`` over p after n steps: n log2(1/(1-eps))."""
    if not 0.0 <= smoothing_eps < 1.0:
        raise ValueError(f"smoothing eps must be in [0, 1), got {smoothing_eps}")
    return np.asarray(n_steps, dtype=np.float64) * -math.log2(1.0 - smoothing_eps)


def per_sequence_bound(program_log_loss_bits, program_bits, log2_normaliser_bits: float = 0.0,
                       *, n_steps=None, smoothing_eps: float = 0.0, smoothed: bool = True):
    """Upper bound on the mixture's cumulative log-loss (bits) given a program's.

    ``program_log_loss_bits`` may be a number or a curve (cumulative, per step). With
    ``smoothed=True`` (default) it is the loss of the smoothed program the mixture runs, bound (1);
    with ``smoothed=False`` it is the loss of the raw program (e.g. computed from the teacher's own
    ``teacher_probs``) and ``n_steps`` and ``smoothing_eps`` add the smoothing cost, bound (2)."""
    L = np.asarray(program_log_loss_bits, dtype=np.float64)
    out = L + np.asarray(program_bits, dtype=np.float64) + float(log2_normaliser_bits)
    if not smoothed:
        if n_steps is None:
            n_steps = np.arange(1, L.shape[-1] + 1) if L.ndim else 1
        out = out + smoothing_cost_bits(n_steps, smoothing_eps)
    return out


def bound_slack(mixture_log_loss_bits, program_log_loss_bits, program_bits, log2_normaliser_bits: float = 0.0,
                **kw):
    """bound - mixture loss (>= 0 whenever the bound holds). Broadcasts over programs/curves."""
    return per_sequence_bound(program_log_loss_bits, program_bits, log2_normaliser_bits, **kw) - np.asarray(
        mixture_log_loss_bits, dtype=np.float64)


def expected_kl_bound(program_bits: float, log2_normaliser_bits: float = 0.0, n_steps=1,
                      smoothing_eps: float = 0.0):
    """Bound (3) on ``E sum_{t<n} KL(mu_t || xi_t)`` in bits, for the teacher mu in the class."""
    return float(program_bits) + float(log2_normaliser_bits) + smoothing_cost_bits(n_steps, smoothing_eps)


def mean_kl_bound(program_bits: float, log2_normaliser_bits: float = 0.0, n_steps=1, smoothing_eps: float = 0.0):
    """Bound (3) divided by n: the mean KL per step over the first n steps, in bits."""
    n = np.asarray(n_steps, dtype=np.float64)
    return (float(program_bits) + float(log2_normaliser_bits)) / n - math.log2(1.0 - smoothing_eps)


def levin_kt(bits, steps_per_prediction):
    """Levin's Kt = description bits + log2(steps per prediction)."""
    s = np.asarray(steps_per_prediction, dtype=np.float64)
    if (s < 1).any():
        raise ValueError("steps per prediction must be >= 1")
    return np.asarray(bits, dtype=np.float64) + np.log2(s)


def speed_prior_bits(bits, steps_per_prediction):
    """Code length under the speed prior ``2^-bits / steps`` (= Kt)."""
    return levin_kt(bits, steps_per_prediction)


__all__ = [
    "log2_normaliser", "merged_bits", "smoothing_cost_bits", "per_sequence_bound", "bound_slack",
    "expected_kl_bound", "mean_kl_bound", "levin_kt", "speed_prior_bits",
]
