"""``Mixture``: the bounded Solomonoff-style imitator (an ``Imitator``).

    from learners.solomonoff import Mixture
    mix = Mixture.for_env("hypospace/DarkRoom-v0", max_bits=22, env_kwargs={"goal": [2, 7]})
    probs = mix.predict_history(history)        # teacher-forced, conditions the mixture
    print(mix.format_top(5))                     # readable programs, bits, posterior mass
    mix.class_mass("QLearning(init=0, alpha=1/2, gamma=3/4, explore=eps_greedy(1/4))")

Prior ``2^-bits / Z`` over the enumerated programs (``enumerate.py``), behaviourally equivalent
programs merged by adding weights (``probe.py``, ``hypotheses.py``), every program run by the
batched interpreter (``interpreter/``), smoothed ``(1 - eps) p + eps / A`` so no likelihood is
0, and the exact Bayes posterior kept in log space (``inference.py``); what it believes is
asked through ``queries.py``.

The per-sequence bound ``L_mix <= L_p + bits(p) + log2 Z`` (``theory.bounds``) is checked by
``check_bound()`` against every hypothesis, and against independently run programs by
``learners.solomonoff.checks``.
"""
from __future__ import annotations

import copy
from typing import Any, Sequence

import numpy as np

from learners.errors import HistoryFitError
from learners.solomonoff.enumerate import ProgramSpace, enumerate_programs
from learners.solomonoff.grammar import Grammar
from learners.solomonoff.hypotheses import HypothesisBuilding, HypothesisGroup
from learners.solomonoff.inference import Inference
from learners.solomonoff.misspecification import PredictiveCheck
from learners.solomonoff.probe import EnvProfile, probe_histories, profile_for_env
from learners.solomonoff.queries import LN2, Queries
from learners.solomonoff.semantics import DEFAULT_SMOOTHING


class Mixture(HypothesisBuilding, Inference, Queries):
    """Bayes mixture over the programs of ``space`` (see the module docstring)."""

    def __init__(self, space: ProgramSpace, *, profile: EnvProfile | None = None, smoothing: float = DEFAULT_SMOOTHING,
                 dedup: bool = True, probe_seed: int = 12345, probe_length: int = 600, probe_count: int = 4,
                 seed: int | None = 0, progress: bool = False, threads: int = 1,
                 misspecification_bits: float = 10.0):
        if not 0.0 < smoothing < 1.0:
            raise ValueError(f"smoothing must be in (0, 1), got {smoothing}")
        g = space.grammar
        self.space = space
        self.grammar = g
        self.n_actions = g.n_actions
        self.n_states = g.n_states
        self.smoothing = float(smoothing)
        self.profile = profile or EnvProfile(g.n_states, g.n_actions, bandit=g.bandit,
                                             episode_len=None if g.bandit else 20, can_terminate=True)
        if (self.profile.n_states, self.profile.n_actions) != (g.n_states, g.n_actions):
            raise HistoryFitError(f"profile has {self.profile.n_states} states / {self.profile.n_actions} actions, "
                                  f"the grammar {g.n_states} / {g.n_actions}")
        self.rng = np.random.default_rng(seed)
        self.probes = probe_histories(self.profile, n=probe_count, length=probe_length, seed=probe_seed)
        self.dedup_stats: dict[str, Any] = {}
        if int(threads) < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.threads = int(threads)
        self._pool = None
        self.groups = self._build(dedup, progress)
        self.log2_normaliser = space.log2_normaliser()
        self.log_prior = [(gr.log2w - self.log2_normaliser) * LN2 for gr in self.groups]
        self.logw = [lp.copy() for lp in self.log_prior]
        self.mix_log_loss: list[float] = []   # -log2 xi(a_t) at each evidence step
        self.n_evidence = 0
        # warns (MisspecificationWarning) when the teacher looks outside the class; false alarms
        # on a teacher inside it have probability <= 2^-misspecification_bits
        self.predictive_check = PredictiveCheck(g.n_states, g.n_actions, code_bits_max=self._code_bits_max(),
                                                smoothing=self.smoothing, significance_bits=misspecification_bits)
        self._cache: tuple | None = None
        self._act: list | None = None
        self._act_age = 0

    def _code_bits_max(self) -> float:
        """An upper bound on the normalised code length (-log2 prior) of every program of the class."""
        sp = self.space
        bits = max(sp.max_bits, sp.max_kt or 0.0, -float(sp.log2_weights().min()))
        if sp.prior == "speed" and sp.max_kt is None and sp.n_td:
            bits += float(np.log2(sp.td["steps"].max()))
        return bits + self.log2_normaliser

    # ------------------------------------------------------------------------------- building
    @classmethod
    def for_env(cls, env_id: str, max_bits: float, *, env_kwargs: dict[str, Any] | None = None, max_kt: float | None = None,
                prior: str = "length", part_budgets: dict[str, float] | None = None, kinds: Sequence[str] | None = None,
                kind_budgets: dict[str, float] | None = None, variants: Sequence[str] = (), **kw: Any) -> "Mixture":
        """The mixture for a registered toy env: grammar and probe profile from the env's spaces
        (``variants``: the grammar's implementation variants, ``Grammar.variants``)."""
        profile = profile_for_env(env_id, **(env_kwargs or {}))
        grammar = Grammar(profile.n_states, profile.n_actions, bandit=profile.bandit, variants=tuple(variants))
        space = enumerate_programs(grammar, max_bits, max_kt=max_kt, prior=prior, part_budgets=part_budgets, kinds=kinds,
                                   kind_budgets=kind_budgets)
        return cls(space, profile=profile, **kw)

    def __getstate__(self) -> dict[str, Any]:
        d = self.__dict__.copy()
        d["_pool"] = None
        return d

    def reset_programs(self) -> None:
        """Every program back to its initial state (fresh tables, clocks at 0); beliefs kept.
        For a new task: the identified learners start learning it from scratch."""
        for gr in self.groups:
            gr.engine.reset()
        self._cache = None

    def clone(self) -> "Mixture":
        """An independent copy (same beliefs and program states)."""
        return copy.deepcopy(self)

    def compact(self, nats: float = 760.0) -> "Mixture":
        """A copy holding only the hypotheses whose weight is not 0.0 in float64 (log weight within
        ``nats`` of the best; exp(-745.2) underflows to 0), with their current program states.

        For acting with frozen beliefs (closed loop): the hypotheses left out have weight exactly
        0 in every prediction, so the actions are those of the full mixture (up to summation
        order). Do not show the compacted mixture more evidence expecting the full posterior:
        the left-out hypotheses could have regained weight."""
        new = copy.copy(self)
        M = max(float(lw.max()) for lw in self.logw)
        groups, logw, log_prior, fps = [], [], [], []
        off = 0
        for gr, lw, lp in zip(self.groups, self.logw, self.log_prior):
            n = gr.engine.n
            keep = np.flatnonzero(lw >= M - nats)
            fp = None if self.fingerprints is None or gr.name == "family" else self.fingerprints[off:off + n]
            off += n
            if gr.name == "family":
                eng = copy.deepcopy(gr.engine)
                groups.append(HypothesisGroup(gr.name, eng, gr.log2w, gr.bits, gr.members, gr.refs))
                logw.append(lw.copy())
                log_prior.append(lp.copy())
                continue
            if keep.size == 0:
                continue
            eng = self._subset_engine(gr, keep)
            perm = getattr(eng, "variant_order", np.arange(keep.size))
            keep = keep[perm]
            self._transfer_state(gr.engine, eng, keep)
            ng = HypothesisGroup(gr.name, eng, gr.log2w[keep], gr.bits[keep], gr.members[keep], [gr.refs[i] for i in keep])
            groups.append(ng)
            logw.append(lw[keep].copy())
            log_prior.append(lp[keep].copy())
            if fp is not None:
                fps.append(fp[keep])
        new.groups, new.logw, new.log_prior = groups, logw, log_prior
        new.fingerprints = np.concatenate(fps) if (self.fingerprints is not None and fps) else None
        new.family = next((g.engine for g in groups if g.name == "family"), None)
        new.mix_log_loss = list(self.mix_log_loss)
        new.predictive_check = copy.deepcopy(self.predictive_check)
        new.rng = copy.deepcopy(self.rng)
        new._cache, new._act, new._act_age, new._pool = None, None, 0, None
        new.compacted_from = self.n_hypotheses
        return new


__all__ = ["Mixture"]
