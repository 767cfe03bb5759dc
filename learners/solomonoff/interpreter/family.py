"""The closed-form families: cyclic sequences and reactive tables, each family one hypothesis."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from learners.solomonoff.grammar import Grammar
from learners.solomonoff.interpreter.base import RowEngine, kernels, resolve_backend


class FamilyEngine(RowEngine):
    """Cyclic families (clock, period L) and reactive families (default d, exception rate 2^-k).

    Per-entry log-likelihoods of "the entry's action is a'" are shared: cyclic entries
    (clock, L, j) in ``cyc_ll [n_entries, A]``; reactive entries per state in ``react_ll [S, A]``.
    A family's raw probabilities at a step are the posterior over its current entry's action."""

    def __init__(self, grammar: Grammar, cyclic: Sequence[tuple[str, int]], reactive: Sequence[tuple[int, int]],
                 smoothing: float, backend: str | None = None):
        self.S, self.A = grammar.n_states, grammar.n_actions
        self.backend = resolve_backend(backend)
        self.smoothing = smoothing
        A = self.A
        self.cyclic = list(cyclic)
        self.reactive = list(reactive)
        self.n_cyc, self.n_react = len(self.cyclic), len(self.reactive)
        self.n = self.n_cyc + self.n_react
        self.clock_of = np.array([0 if c == "episode" else 1 for c, _ in self.cyclic], dtype=np.int64)
        self.period = np.array([L for _, L in self.cyclic], dtype=np.int64)
        self.offset = np.concatenate([[0], np.cumsum(self.period)[:-1]]).astype(np.int64) if self.n_cyc else np.zeros(0, np.int64)
        self.n_entries = int(self.period.sum()) if self.n_cyc else 0
        self.default = np.array([d for d, _ in self.reactive], dtype=np.int64)
        self.rho = np.array([2.0 ** -k for _, k in self.reactive])
        # log prior of the entry's action under each reactive family: [n_react, A]
        if self.n_react:
            lp = np.log(self.rho / (A - 1))[:, None] * np.ones((1, A))
            lp[np.arange(self.n_react), self.default] = np.log1p(-self.rho)
            self.react_logprior = lp
        self.log_hit = math.log((1.0 - smoothing) + smoothing / A)
        self.log_miss = math.log(smoothing / A)
        self.cyc_ll = np.zeros((self.n_entries, A))
        self.react_ll = np.zeros((self.S, A))
        self.reset()

    def reset(self) -> None:
        """Program state = the clocks (the likelihood tables are evidence, kept)."""
        self.t = np.zeros(2, dtype=np.int64)  # [episode step, global step]

    def reset_evidence(self) -> None:
        self.cyc_ll[:] = 0.0
        self.react_ll[:] = 0.0

    def _entries(self) -> np.ndarray:
        return self.offset + self.t[self.clock_of] % self.period

    def _rows(self) -> tuple[np.ndarray, np.ndarray]:
        return self._pT, np.zeros((0, 0))

    def prepare(self, s: int) -> None:
        if self.backend == "numba":
            self._pT = np.empty((self.A, self.n))
            rlp = self.react_logprior if self.n_react else np.zeros((0, self.A))
            kernels.family_probs(self.cyc_ll, self._entries() if self.n_cyc else np.zeros(0, np.int64), rlp,
                            self.react_ll[s], self._pT)
            self._p = self._pT.T
            self._s = s
            return
        parts = []
        if self.n_cyc:
            ll = self.cyc_ll[self._entries()]
            post = np.exp(ll - ll.max(axis=1, keepdims=True))
            parts.append(post / post.sum(axis=1, keepdims=True))
        if self.n_react:
            ll = self.react_logprior + self.react_ll[s][None, :]
            post = np.exp(ll - ll.max(axis=1, keepdims=True))
            parts.append(post / post.sum(axis=1, keepdims=True))
        self._p = np.concatenate(parts) if parts else np.zeros((0, self.A))
        self._s = s

    def evidence(self, s: int, a: int) -> None:
        """Teacher-forced step: the entries in use learn that the teacher took ``a``."""
        hit = np.full(self.A, self.log_miss)
        hit[a] = self.log_hit
        if self.n_cyc:
            e = self._entries()
            self.cyc_ll[e] += hit  # entries of different families are distinct rows
        if self.n_react:
            self.react_ll[s] += hit

    def advance(self, s, a, r, s2, terminated, truncated) -> None:
        self.t[1] += 1
        self.t[0] = 0 if (terminated or truncated) else self.t[0] + 1

    # ---- members -----------------------------------------------------------------------------
    def cyclic_member_log_post(self, fam: int, seq: Sequence[int]) -> float:
        """log posterior probability of one member given the family (product over positions)."""
        L = int(self.period[fam])
        ll = self.cyc_ll[self.offset[fam]:self.offset[fam] + L]
        lse = np.logaddexp.reduce(ll, axis=1)
        return float(np.sum(ll[np.arange(L), list(seq)] - lse))

    def cyclic_map_member(self, fam: int) -> tuple[int, ...]:
        L = int(self.period[fam])
        return tuple(int(x) for x in self.cyc_ll[self.offset[fam]:self.offset[fam] + L].argmax(axis=1))

    def reactive_member_log_post(self, fam: int, table: np.ndarray) -> float:
        ll = self.react_logprior[fam][None, :] + self.react_ll
        lse = np.logaddexp.reduce(ll, axis=1)
        return float(np.sum(ll[np.arange(self.S), table] - lse))

    def reactive_map_member(self, fam: int) -> np.ndarray:
        return (self.react_logprior[fam][None, :] + self.react_ll).argmax(axis=1)
