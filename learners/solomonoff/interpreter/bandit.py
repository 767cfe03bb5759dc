"""Bandit programs: UCB1 (index policy) and Thompson sampling (Beta-Bernoulli posterior sampling),
each with counts shared by all its programs and per-program constants."""
from __future__ import annotations

import math

import numpy as np

from learners.beta_bernoulli import thompson_probs
from learners.solomonoff.grammar import Grammar
from learners.solomonoff.interpreter.base import RowEngine


class UCBEngine(RowEngine):
    """UCB1 programs: shared pull counts and reward sums per (state, arm); per-program c."""

    def __init__(self, grammar: Grammar, c: np.ndarray, smoothing: float):
        self.S, self.A = grammar.n_states, grammar.n_actions
        self.c = np.asarray(c, dtype=np.float64)
        self.n = self.c.size
        self.smoothing = smoothing
        self.reset()

    def reset(self) -> None:
        self.N = np.zeros((self.S, self.A), dtype=np.int64)
        self.sum = np.zeros((self.S, self.A))

    def prepare(self, s: int) -> None:
        N, tot = self.N[s], self.sum[s]
        unpulled = N == 0
        if unpulled.any():
            p = np.broadcast_to(unpulled / float(np.count_nonzero(unpulled)), (self.n, self.A))
        else:
            t = float(N.sum())
            index = tot / N + np.sqrt(self.c[:, None] * math.log(t) / N[None, :])
            m = index == index.max(axis=1, keepdims=True)
            p = m / m.sum(axis=1, keepdims=True).astype(np.float64)
        self._p = p

    def all_probs(self) -> np.ndarray:
        return np.array(self._p)   # a copy: ``_p`` may be a read-only broadcast view

    def advance(self, s, a, r, s2, terminated, truncated) -> None:
        self.N[s, a] += 1
        self.sum[s, a] += r


class ThompsonEngine(RowEngine):
    """Thompson sampling programs. Their exact action probabilities need an adaptive quadrature per
    distinct posterior (``learners.beta_bernoulli.thompson_probs``, ~0.3 ms), so this engine
    loops over its programs -- the one exception to batching; Levin's Kt charges Thompson
    programs log2(80 A^2) bits of compute, which keeps them few."""

    def __init__(self, grammar: Grammar, prior_alpha: np.ndarray, prior_beta: np.ndarray, smoothing: float):
        self.S, self.A = grammar.n_states, grammar.n_actions
        self.a0 = np.asarray(prior_alpha, dtype=np.float64)
        self.b0 = np.asarray(prior_beta, dtype=np.float64)
        self.n = self.a0.size
        self.smoothing = smoothing
        self.reset()

    def reset(self) -> None:
        self.alpha = np.repeat(self.a0[:, None, None], self.S, 1).repeat(self.A, 2)
        self.beta = np.repeat(self.b0[:, None, None], self.S, 1).repeat(self.A, 2)
        self._key = None

    def prepare(self, s: int) -> None:
        key = (s, self.alpha[:, s].tobytes(), self.beta[:, s].tobytes())
        if key == self._key:
            return
        self._p = np.stack([thompson_probs(self.alpha[i, s], self.beta[i, s]) for i in range(self.n)]) if self.n else np.zeros((0, self.A))
        self._key = key

    def advance(self, s, a, r, s2, terminated, truncated) -> None:
        self.alpha[:, s, a] += r
        self.beta[:, s, a] += 1.0 - r
