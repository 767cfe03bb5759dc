"""Constant and stochastic policies: one matrix of action probabilities."""
from __future__ import annotations

import numpy as np

from learners.solomonoff.grammar import Grammar
from learners.solomonoff.interpreter.base import RowEngine, resolve_backend, smooth_log


class FixedEngine(RowEngine):
    """Constant and stochastic policies (their rows never change)."""

    def __init__(self, grammar: Grammar, probs: np.ndarray, smoothing: float, backend: str | None = None):
        self.A = grammar.n_actions
        self.smoothing = float(smoothing)
        self.P = np.asarray(probs, dtype=np.float64).reshape(-1, self.A)
        self._p = self.P
        self.logp = smooth_log(self.P, smoothing, self.A)
        self.n = self.P.shape[0]
        self.backend = resolve_backend(backend)

    def _rows(self) -> tuple[np.ndarray, np.ndarray]:
        if getattr(self, "_PT", None) is None:
            self._PT, self._logpT = np.ascontiguousarray(self.P.T), np.ascontiguousarray(self.logp.T)
        return self._PT, self._logpT

    def loglik(self, a: int) -> np.ndarray:
        return self.logp[:, a]
