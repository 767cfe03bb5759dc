"""Reference semantics: one program, run by itself, as an ``Agent`` (plain Python, one table each).

This is the definition the batched interpreter (``interpreter.py``) must reproduce exactly, and
the "straightforward loop over programs" the benchmark compares it with. It is deliberately
simple: a TD program owns its ``Q`` and ``N``; its action probabilities and its update follow the
grammar's semantics (``grammar.py``) with the same floating-point operations, in the same
order, as the tabular and bandit teachers -- which is what makes a teacher identifiable.

``raw_probs(obs)`` is the program's own distribution (it may contain zeros); ``action_probs``
is the smoothed one the mixture runs, ``(1 - eps) p + eps / A``.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from learners.protocols import SampledAgent, Transition
from learners.beta_bernoulli import thompson_probs
from learners.solomonoff.grammar import Grammar
from learners.solomonoff.syntax import TD, UCB1, Constant, Cyclic, LinearTarget, Program, Reactive, Stochastic, Thompson

DEFAULT_SMOOTHING = 2.0 ** -10


def explore_probs(kind: str, param: float, q: np.ndarray, n: np.ndarray, first: bool = False) -> np.ndarray:
    """The action distribution of one action rule on one row of values ``q`` and counts ``n``
    (the same float operations as ``learners.teachers.tabular``); ``first``: greedy ties go to
    the first maximal action (``np.argmax``)."""
    if kind in ("greedy", "eps_greedy"):
        eps = 0.0 if kind == "greedy" else param
        if first:
            return eps / q.size + (1.0 - eps) * (np.arange(q.size) == np.argmax(q))
        greedy = q == q.max()
        return eps / q.size + (1.0 - eps) * greedy / np.count_nonzero(greedy)
    if kind == "softmax":
        z = np.exp((q - q.max()) / param)
        return z / z.sum()
    if kind == "count_bonus":
        u = q + param / np.sqrt(n + 1.0)
        greedy = u == u.max()
        return greedy / float(np.count_nonzero(greedy))
    raise ValueError(f"unknown action rule {kind!r}")


class ProgramAgent(SampledAgent):
    """One program of ``grammar`` as an agent (the slow reference interpreter)."""

    def __init__(self, program: Program, grammar: Grammar, *, smoothing: float = DEFAULT_SMOOTHING, seed: int | None = 0):
        grammar.check(program)
        self.program = program
        self.grammar = grammar
        self.n_actions = grammar.n_actions
        self.n_states = grammar.n_states
        self.smoothing = float(smoothing)
        self.rng = np.random.default_rng(seed)
        self.reset()

    # ---------------------------------------------------------------- state
    def reset(self) -> None:
        """Back to the program's initial state (fresh value table, clocks at 0)."""
        p, S, A = self.program, self.n_states, self.n_actions
        self.t_global = 0
        self.t_episode = 0
        if isinstance(p, TD):
            self.Q = np.full((S, A), float(p.init))
            self.N = np.zeros((S, A), dtype=np.int64)
            self.pending: Transition | None = None
            f: LinearTarget = p.form
            self.coef = tuple(float(c) for c in f.as_tuple())
            self.gamma = float(p.gamma) if p.gamma is not None else 0.0
            self.deferred = f.waits_for_next_action   # SARSA's targets, and the act-first order
            self.trunc_terminal = f.trunc_terminal
            self.alpha = None if p.alpha is None else float(p.alpha)
            self.kind = p.explore.kind
            self.param = None if p.explore.param is None else float(p.explore.param)
            self.first = p.explore.ties == "first"
            self.schedule = p.explore.schedule
            self.param_prev = self.param   # the policy of the step whose update is pending
            self.decays = 0
        elif isinstance(p, UCB1):
            self.N = np.zeros((S, A), dtype=np.int64)
            self.sum = np.zeros((S, A))
        elif isinstance(p, Thompson):
            self.alpha_post = np.full((S, A), float(p.prior_alpha))
            self.beta_post = np.full((S, A), float(p.prior_beta))

    def _state(self, obs: Any) -> int:
        s = int(obs)
        if not 0 <= s < self.n_states:
            raise ValueError(f"observation {obs!r} outside 0..{self.n_states - 1}")
        return s

    # ---------------------------------------------------------------- acting
    def raw_probs(self, obs: Any) -> np.ndarray:
        p, s, A = self.program, self._state(obs), self.n_actions
        if isinstance(p, TD):
            return explore_probs(self.kind, self.param, self.Q[s], self.N[s], self.first)
        if isinstance(p, Constant):
            return np.eye(A)[p.action]
        if isinstance(p, Stochastic):
            return np.asarray(p.counts, dtype=np.float64) / sum(p.counts)
        if isinstance(p, Cyclic):
            t = self.t_episode if p.clock == "episode" else self.t_global
            return np.eye(A)[p.seq[t % len(p.seq)]]
        if isinstance(p, Reactive):
            return np.eye(A)[dict(p.table).get(s, p.default)]
        if isinstance(p, UCB1):
            N, tot = self.N[s], self.sum[s]
            unpulled = N == 0
            if unpulled.any():
                return unpulled / float(np.count_nonzero(unpulled))
            t = float(N.sum())
            index = tot / N + np.sqrt(float(p.c) * math.log(t) / N)
            g = index == index.max()
            return g / float(np.count_nonzero(g))
        if isinstance(p, Thompson):
            return thompson_probs(self.alpha_post[s], self.beta_post[s])
        raise TypeError(p)

    def action_probs(self, obs: Any) -> np.ndarray:
        return (1.0 - self.smoothing) * self.raw_probs(obs) + self.smoothing / self.n_actions

    # ---------------------------------------------------------------- learning
    def _td_update(self, s: int, a: int, r: float, s2: int, terminated: bool, truncated: bool, a2: int | None,
                   param: float | None = None) -> None:
        cr, c1, cm, cn, ce = self.coef
        q2 = self.Q[s2]
        if terminated:
            m = nq = e = 0.0
        else:
            m = float(q2.max()) if cm else 0.0
            e = 0.0
            if ce or (cn and a2 is None):
                e = float(explore_probs(self.kind, self.param if param is None else param, q2, self.N[s2], self.first) @ q2)
            nq = (float(q2[a2]) if a2 is not None else e) if cn else 0.0
        # a truncation treated as terminal: the bootstrap terms count with weight 0
        gamma = 0.0 if (truncated and self.trunc_terminal) else self.gamma
        y = (cr * r + c1) + gamma * ((cm * m + cn * nq) + ce * e)
        self.N[s, a] += 1
        step = self.alpha if self.alpha is not None else 1.0 / self.N[s, a]
        self.Q[s, a] += step * (y - self.Q[s, a])

    def observe(self, transition: Transition, *, intervention: bool = True) -> None:
        t = transition
        s, a, s2 = self._state(t.obs), int(t.action), self._state(t.next_obs)
        r, term, trunc = float(t.reward), bool(t.terminated), bool(t.truncated)
        p = self.program
        if isinstance(p, TD):
            if self.deferred:
                if self.pending is not None:
                    q = self.pending
                    self.pending = None
                    self._td_update(self._state(q.obs), int(q.action), float(q.reward), self._state(q.next_obs),
                                    False, False, a, self.param_prev)
                if term or trunc:
                    self._td_update(s, a, r, s2, term, trunc, None)
                else:
                    self.pending = t
            else:
                self._td_update(s, a, r, s2, term, trunc, None)
            # the epsilon schedule: the next action is drawn with the decayed epsilon
            self.param_prev = self.param
            sch = self.schedule
            if sch is not None and (sch.per == "step" or term or trunc):
                self.decays += 1
                self.param = sch.decay(self.param, float(p.explore.param), self.decays)
        elif isinstance(p, UCB1):
            self.N[s, a] += 1
            self.sum[s, a] += r
        elif isinstance(p, Thompson):
            self.alpha_post[s, a] += r
            self.beta_post[s, a] += 1.0 - r
        self.t_global += 1
        self.t_episode = 0 if (term or trunc) else self.t_episode + 1

    def values(self) -> np.ndarray | None:
        if isinstance(self.program, TD):
            return self.Q.copy()
        return None


__all__ = ["ProgramAgent", "explore_probs", "DEFAULT_SMOOTHING"]
