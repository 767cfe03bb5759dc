"""``Mixture``: the bounded Solomonoff-style imitator (an ``Imitator``).

    from learners.solomonoff import Mixture
    mix = Mixture.for_env("hypospace/DarkRoom-v0", max_bits=22, env_kwargs={"goal": [2, 7]})
    probs = mix.predict_history(history)        # teacher-forced, conditions the mixture
    print(mix.format_top(5))                     # readable programs, bits, posterior mass
    mix.class_mass("QLearning(init=0, alpha=1/2, gamma=3/4, explore=eps_greedy(1/4))")

Prior ``2^-bits / Z`` over the enumerated programs (``enumerate.py``), behaviourally equivalent
programs merged by adding weights (``probe.py``), every program run by the batched interpreter
(``interpreter.py``), smoothed ``(1 - eps) p + eps / A`` so no likelihood is 0, and the exact
Bayes posterior kept in log space. ``observe(..., intervention=False)`` is evidence (the
teacher's action): weights are multiplied by each program's probability of it.
``intervention=True`` (the mixture acted itself): every program's state advances -- its value
table learns from the transition -- but no weight changes.

The per-sequence bound ``L_mix <= L_p + bits(p) + log2 Z`` (``theory.bounds``) is checked by
``check_bound()`` against every hypothesis, and against independently run programs by
``learners.solomonoff.checks``.
"""
from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Sequence

import numpy as np

from learners.protocols import Transition, sample_action
from learners.solomonoff.enumerate import BudgetError, ProgramSpace, enumerate_programs
from learners.solomonoff.grammar import (TD, UCB1, Constant, Cyclic, Grammar, Program, Reactive, Stochastic, Thompson,
                                         parse_program, program_source)
from learners.solomonoff.interpreter import FamilyEngine, FixedEngine, TDEngine, ThompsonEngine, UCBEngine
from learners.solomonoff.probe import EnvProfile, Probe, fingerprint_engines, probe_histories, profile_for_env
from learners.solomonoff.semantics import DEFAULT_SMOOTHING
from theory import bounds as TB

LN2 = math.log(2.0)
EXPLORE_KIND = {"greedy": 0, "eps_greedy": 0, "softmax": 1, "count_bonus": 2}


class HistoryMismatch(ValueError):
    """A history (or transition) that does not fit the mixture's grammar (actions, observations)."""


# =============================================================================================
# Building engines
# =============================================================================================
def _td_arrays_from_programs(progs: Sequence[TD], bandit: bool) -> tuple[dict, dict]:
    """Tables + variants for a list of TD programs (one variant each; tables shared where the
    dynamics agree)."""
    keys: dict[tuple, int] = {}
    t_init, t_alpha, t_coef, t_gamma, t_pk, t_pp = [], [], [], [], [], []
    v_table, v_kind, v_param = [], [], []
    for p in progs:
        f = p.form.terminal_only() if bandit else p.form
        pi_dep = bool(f.exp or f.next)
        ek, ep = EXPLORE_KIND[p.explore.kind], float(p.explore.param or 0)
        gam = float(p.gamma) if (p.gamma is not None and f.uses_gamma) else 0.0
        key = (p.init, p.alpha, f.as_tuple(), gam, (ek, ep) if pi_dep else None)
        if key not in keys:
            keys[key] = len(keys)
            t_init.append(float(p.init))
            t_alpha.append(np.nan if p.alpha is None else float(p.alpha))
            t_coef.append([float(c) for c in f.as_tuple()])
            t_gamma.append(gam)
            t_pk.append(ek if pi_dep else -1)
            t_pp.append(ep if pi_dep else 0.0)
        v_table.append(keys[key])
        v_kind.append(ek)
        v_param.append(ep)
    tables = {"init": np.array(t_init), "alpha": np.array(t_alpha), "coef": np.array(t_coef).reshape(-1, 5),
              "gamma": np.array(t_gamma), "pi_kind": np.array(t_pk, dtype=np.int64), "pi_param": np.array(t_pp)}
    variants = {"table": np.array(v_table, dtype=np.int64), "kind": np.array(v_kind, dtype=np.int64),
                "param": np.array(v_param)}
    return tables, variants


def _td_arrays_from_space(space: ProgramSpace, idx: np.ndarray) -> tuple[dict, dict]:
    """Tables + variants for TD classes ``idx`` of ``space``, vectorised (10^5+ classes)."""
    P, d, bandit = space.td_parts, space.td, space.grammar.bandit
    init_v = np.array([float(x) for x in P.inits])
    alpha_v = np.array([np.nan if x is None else float(x) for x in P.alphas])
    gamma_v = np.array([float(x) for x in P.gammas] + [0.0])          # index -1 -> 0.0
    coef_f = np.array([[float(c) for c in f.as_tuple()] for f in P.forms]).reshape(-1, 5)
    pidep_f = np.array([bool(f.exp or f.next) for f in P.forms])
    ek = np.array([EXPLORE_KIND[e.kind] for e in P.explores], dtype=np.int64)
    ep = np.array([float(e.param or 0) for e in P.explores])
    ii, ai, fi, gi, ei = (d[k][idx] for k in ("init", "alpha", "form", "gamma", "explore"))
    pd = pidep_f[fi]
    radix = [len(P.inits), len(P.alphas), len(P.forms), len(P.gammas) + 1, len(P.explores) + 1]
    key = np.zeros(idx.size, dtype=np.int64)
    for col, r in zip((ii, ai, fi, gi + 1, np.where(pd, ei + 1, 0)), radix):
        key = key * r + col
    uniq, first, inv = np.unique(key, return_index=True, return_inverse=True)
    inv = inv.reshape(-1)
    f0 = first
    tables = {"init": init_v[ii[f0]], "alpha": alpha_v[ai[f0]], "coef": coef_f[fi[f0]],
              "gamma": np.where(gi[f0] >= 0, gamma_v[gi[f0]], 0.0),
              "pi_kind": np.where(pd[f0], ek[ei[f0]], -1), "pi_param": np.where(pd[f0], ep[ei[f0]], 0.0)}
    variants = {"table": inv, "kind": ek[ei], "param": ep[ei]}
    return tables, variants


def _fixed_probs(progs: Sequence[Program], A: int) -> np.ndarray:
    rows = []
    for p in progs:
        if isinstance(p, Constant):
            rows.append(np.eye(A)[p.action])
        else:
            rows.append(np.asarray(p.counts, dtype=np.float64) / sum(p.counts))
    return np.array(rows).reshape(-1, A)


@dataclass
class _Group:
    """The hypotheses of one engine: their engine, prior weights and how to print them."""

    name: str
    engine: Any
    log2w: np.ndarray     # log2 of the (merged) prior weight, unnormalised
    bits: np.ndarray      # description bits of the representative
    members: np.ndarray   # number of symbolic classes merged into each
    refs: list            # per hypothesis: how to materialise its representative


# =============================================================================================
# The mixture
# =============================================================================================
class Mixture:
    """Bayes mixture over the programs of ``space`` (see the module docstring)."""

    def __init__(self, space: ProgramSpace, *, profile: EnvProfile | None = None, smoothing: float = DEFAULT_SMOOTHING,
                 dedup: bool = True, probe_seed: int = 12345, probe_length: int = 600, probe_count: int = 4,
                 seed: int | None = 0, progress: bool = False, threads: int = 1):
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
            raise HistoryMismatch(f"profile has {self.profile.n_states} states / {self.profile.n_actions} actions, "
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
        self._cache: tuple | None = None
        self._act: list | None = None
        self._act_age = 0

    # ------------------------------------------------------------------------------- building
    @classmethod
    def for_env(cls, env_id: str, max_bits: float, *, env_kwargs: dict[str, Any] | None = None, max_kt: float | None = None,
                prior: str = "length", part_budgets: dict[str, float] | None = None, kinds: Sequence[str] | None = None,
                kind_budgets: dict[str, float] | None = None, **kw: Any) -> "Mixture":
        """The mixture for a registered toy env: grammar and probe profile from the env's spaces."""
        profile = profile_for_env(env_id, **(env_kwargs or {}))
        grammar = Grammar(profile.n_states, profile.n_actions, bandit=profile.bandit)
        space = enumerate_programs(grammar, max_bits, max_kt=max_kt, prior=prior, part_budgets=part_budgets, kinds=kinds,
                                   kind_budgets=kind_budgets)
        return cls(space, profile=profile, **kw)

    def _build(self, dedup: bool, progress: bool) -> list[_Group]:
        sp, g, A, sm = self.space, self.grammar, self.grammar.n_actions, self.smoothing
        cands: list[_Group] = []
        if sp.n_td:
            idx = np.arange(sp.n_td)
            t, v = _td_arrays_from_space(sp, idx)
            eng = TDEngine(g, t, v, sm)
            rows = eng.variant_order  # engine row -> class index
            cands.append(_Group("td", eng, sp.td["log2w"][rows], sp.td["bits"][rows], np.ones(rows.size, np.int64),
                                [("td", int(i)) for i in rows]))
        if sp.fixed:
            progs = [p for p, *_ in sp.fixed]
            cands.append(_Group("fixed", FixedEngine(g, _fixed_probs(progs, A), sm),
                                np.array([w for _, _, w, _ in sp.fixed]), np.array([b for _, b, _, _ in sp.fixed]),
                                np.ones(len(progs), np.int64), [("prog", p) for p in progs]))
        if sp.ucb:
            cands.append(_Group("ucb1", UCBEngine(g, np.array([float(p.c) for p, *_ in sp.ucb]), sm),
                                np.array([w for _, _, w, _ in sp.ucb]), np.array([b for _, b, _, _ in sp.ucb]),
                                np.ones(len(sp.ucb), np.int64), [("prog", p) for p, *_ in sp.ucb]))
        if sp.thompson:
            cands.append(_Group("thompson", ThompsonEngine(g, np.array([p.prior_alpha for p, *_ in sp.thompson]),
                                                           np.array([p.prior_beta for p, *_ in sp.thompson]), sm),
                                np.array([w for _, _, w, _ in sp.thompson]), np.array([b for _, b, _, _ in sp.thompson]),
                                np.ones(len(sp.thompson), np.int64), [("prog", p) for p, *_ in sp.thompson]))
        n_before = sum(c.engine.n for c in cands)
        if dedup and cands:
            fps = fingerprint_engines([c.engine for c in cands], self.probes, A, progress=progress)
            cands = self._merge(cands, fps)
        if self.threads > 1 and any(c.name == "td" and c.engine.backend == "numpy" for c in cands):
            cands = self._shard_td(cands, self.threads)   # numpy engines: one shard per thread
        for c in cands:
            if c.name == "td" and c.engine.backend == "numba":
                c.engine.set_threads(self.threads)     # compiled engines split their table blocks
        # worker threads over groups only for numpy shards (a compiled engine threads itself)
        self._shards = sum(c.name == "td" for c in cands) > 1
        if dedup and cands:
            self.fingerprints = np.concatenate([c.fp for c in cands])
        else:
            self.fingerprints = None
        self.dedup_stats = {"explicit_before": n_before, "explicit_after": sum(c.engine.n for c in cands),
                            "dedup": bool(dedup)}
        fam = FamilyEngine(g, [(c, L) for c, L, _, _ in sp.cyclic], [(d, k) for d, k, _, _ in sp.reactive], sm)
        if fam.n:
            cands.append(_Group("family", fam,
                                np.array([w for *_, w in sp.cyclic] + [w for *_, w in sp.reactive]),
                                np.array([b for _, _, b, _ in sp.cyclic] + [b for _, _, b, _ in sp.reactive]),
                                np.ones(fam.n, np.int64),
                                [("cyclic", c, L) for c, L, _, _ in sp.cyclic] + [("reactive", d, k) for d, k, _, _ in sp.reactive]))
        self.family = fam if fam.n else None
        return cands

    def _merge(self, cands: list[_Group], fps: list[np.ndarray]) -> list[_Group]:
        """Merge behaviourally equal hypotheses across all engines: representative = shortest,
        weight = sum of the weights (never dropped)."""
        allfp = np.concatenate(fps)
        bits = np.concatenate([c.bits for c in cands])
        log2w = np.concatenate([c.log2w for c in cands])
        members = np.concatenate([c.members for c in cands])
        owner = np.concatenate([np.full(c.engine.n, k) for k, c in enumerate(cands)])
        local = np.concatenate([np.arange(c.engine.n) for c in cands])
        order = np.lexsort((np.arange(bits.size), bits, allfp[:, 1], allfp[:, 0]))
        fs = allfp[order]
        newg = np.r_[True, (fs[1:] != fs[:-1]).any(axis=1)]
        grp = np.cumsum(newg) - 1
        reps = order[newg]
        m = log2w.max()
        wsum = np.bincount(grp, weights=np.exp2(log2w[order] - m))
        msum = np.bincount(grp, weights=members[order])
        merged_log2w = m + np.log2(wsum)
        out = []
        for k, c in enumerate(cands):
            sel = np.flatnonzero(owner[reps] == k)
            keep = local[reps[sel]]
            refs = [c.refs[i] for i in keep]
            eng = self._subset_engine(c, keep)
            # the engine may reorder its rows; follow it
            perm = getattr(eng, "variant_order", np.arange(keep.size))
            sel, keep, refs = sel[perm], keep[perm], [refs[i] for i in perm]
            ng = _Group(c.name, eng, merged_log2w[sel], c.bits[keep], msum[sel].astype(np.int64), refs)
            ng.fp = allfp[reps[sel]]
            out.append(ng)
        self.dedup_stats_groups = {"classes": int(reps.size)}
        return [c for c in out if c.engine.n]

    def _shard_td(self, cands: list[_Group], k: int) -> list[_Group]:
        """Split the TD programs into k engines by value table (for k worker threads)."""
        out = []
        for c in cands:
            if c.name != "td":
                out.append(c)
                continue
            table = c.engine.values_of_variants()
            for j in range(k):
                keep = np.flatnonzero(table % k == j)
                if not keep.size:
                    continue
                eng = self._subset_engine(c, keep)
                keep = keep[eng.variant_order]
                ng = _Group("td", eng, c.log2w[keep], c.bits[keep], c.members[keep], [c.refs[i] for i in keep])
                if hasattr(c, "fp"):
                    ng.fp = c.fp[keep]
                out.append(ng)
        return out

    # ---- worker threads (numpy releases the GIL inside its loops) ------------------------------
    def _par(self, fn, items):
        items = list(items)
        if self.threads <= 1 or len(items) < 2 or not getattr(self, "_shards", True):
            return [fn(x) for x in items]
        if self._pool is None or getattr(self, "_pool_pid", None) != os.getpid():   # (none in a forked child)
            from concurrent.futures import ThreadPoolExecutor

            self._pool, self._pool_pid = ThreadPoolExecutor(max_workers=self.threads), os.getpid()
        return list(self._pool.map(fn, items))

    def __getstate__(self) -> dict[str, Any]:
        d = self.__dict__.copy()
        d["_pool"] = None
        return d

    def _subset_engine(self, c: _Group, keep: np.ndarray):
        g, sm = self.grammar, self.smoothing
        if c.name == "td":
            cls_idx = np.array([r[1] for r in (c.refs[i] for i in keep)], dtype=np.int64)
            t, v = _td_arrays_from_space(self.space, cls_idx)
            eng = TDEngine(g, t, v, sm)
            if eng.backend == "numba":
                eng.set_threads(self.threads)
            return eng
        if c.name == "fixed":
            return FixedEngine(g, c.engine.P[keep], sm)
        if c.name == "ucb1":
            return UCBEngine(g, c.engine.c[keep], sm)
        if c.name == "thompson":
            return ThompsonEngine(g, c.engine.a0[keep], c.engine.b0[keep], sm)
        raise ValueError(c.name)

    # ------------------------------------------------------------------------------- protocol
    def _state(self, obs: Any) -> int:
        try:
            s = int(obs)
        except (TypeError, ValueError):
            raise HistoryMismatch(f"observation {obs!r} is not a state index of Discrete({self.n_states})") from None
        if not 0 <= s < self.n_states:
            raise HistoryMismatch(f"observation {obs!r} outside the grammar's {self.n_states} states")
        return s

    #: Active set: hypotheses whose log weight is within ``_active_nats`` of the best are
    #: exponentiated and mixed; the rest have weight exactly 0.0 in float64 for the next
    #: ``ACTIVE_EVERY`` evidence steps (a hypothesis gains at most log(A/eps) nats per step on the
    #: best), so skipping them changes no bit of any weight (only the summation order).
    ACTIVE_EVERY = 32

    def _active(self, M: float) -> list[np.ndarray | None]:
        if self._act is None or self._act_age >= self.ACTIVE_EVERY:
            gain = math.log(self.n_actions / self.smoothing)
            thr = M - (746.0 + self.ACTIVE_EVERY * gain + 10.0)
            act = []
            for lw in self.logw:
                idx = np.flatnonzero(lw >= thr)
                act.append(None if idx.size > 0.5 * lw.size else idx)
            self._act, self._act_age = act, 0
        return self._act

    def _predict(self, s: int, evidence: int | None = None, transition: tuple | None = None) -> np.ndarray:
        """The predictive at state s. ``evidence``: an action whose evidence the compiled engines
        apply in the same pass (their ``mix_and_evidence``); with ``transition`` = (r, s2,
        terminated, truncated) they also advance in it (their ``step``). Their indices are left in
        ``self._fused`` so that ``_step`` does the rest for the others only."""
        self._fused, self._advanced = (), ()
        self._fused_max = {}
        if self._cache is not None and self._cache[0] == s:
            return self._cache[1]
        fused, advanced = [], []

        cache = getattr(self, "_lwmax", None)
        if cache is None:
            cache = self._lwmax = {}
        fused_max: dict[int, float] = {}

        def prep(k: int) -> float:
            c = cache.get(k)
            if c is not None and c[0] is self.logw[k] and c[1] == self.n_evidence:
                return c[2]      # max(logw[k]) as the compiled pass that last changed it returned
            return float(self.logw[k].max())

        M = max(self._par(prep, range(len(self.groups))))
        act = self._active(M)

        # a compiled TD engine with worker threads: its share first; the rest meanwhile
        later = {}
        if transition is not None and evidence is not None and not getattr(self, "_shards", True):
            for k, gr in enumerate(self.groups):
                eng = gr.engine
                if getattr(eng, "backend", None) == "numba" and hasattr(eng, "step") and eng.threads > 1:
                    fused.append(k)
                    advanced.append(k)
                    later[k] = eng.step(s, evidence, *transition, self.logw[k], M, wait=False)

        def part(k: int) -> tuple[float, np.ndarray | None]:
            lw, idx = self.logw[k], act[k]
            eng = self.groups[k].engine
            if k in later:
                z, m, fused_max[k] = later[k]()
                return z, m
            eng.prepare(s)
            if getattr(eng, "backend", None) == "numba":
                if evidence is None:
                    return eng.mix_logw(lw, M)
                fused.append(k)
                if transition is not None and hasattr(eng, "step"):
                    z, m, fused_max[k] = eng.step(s, evidence, *transition, lw, M)
                    advanced.append(k)
                else:
                    z, m, fused_max[k] = eng.mix_and_evidence(evidence, lw, M)
                return z, m
            if idx is None:
                w = np.exp(lw - M)
            elif idx.size == 0:
                return 0.0, None
            else:
                w = np.exp(lw[idx] - M)
            return float(w.sum()), self.groups[k].engine.mix(w, idx)

        Z = 0.0
        raw = np.zeros(self.n_actions)
        for z, m in self._par(part, [k for k in range(len(self.groups)) if k not in later] + list(later)):
            if m is not None:
                Z += z
                raw += m
        pred = (1.0 - self.smoothing) * (raw / Z) + self.smoothing / self.n_actions
        pred /= pred.sum()
        self._cache = (s, pred)
        self._fused = tuple(fused)
        self._advanced = tuple(advanced)
        self._fused_max = fused_max
        return pred

    def action_probs(self, obs: Any) -> np.ndarray:
        """Predictive distribution of the teacher's next action (pure)."""
        return self._predict(self._state(obs)).copy()

    def act(self, obs: Any) -> int:
        return sample_action(self.action_probs(obs), self.rng)

    def observe(self, transition: Transition, *, intervention: bool = True) -> None:
        """``intervention=False``: the teacher's step (evidence: every weight is multiplied by the
        program's probability of the action). ``intervention=True`` (the protocol's default): the
        mixture acted itself; programs advance, weights do not change."""
        t = transition
        s, s2 = self._state(t.obs), self._state(t.next_obs)
        a = int(t.action)
        if not 0 <= a < self.n_actions:
            raise HistoryMismatch(f"action {t.action!r} outside the grammar's {self.n_actions} actions")
        self._step(s, a, float(t.reward), s2, bool(t.terminated), bool(t.truncated), evidence=not intervention)

    def _step(self, s: int, a: int, r: float, s2: int, term: bool, trunc: bool, evidence: bool) -> np.ndarray | None:
        """Evidence (if ``evidence``) then the transition; returns the predictive the evidence
        was scored by."""
        pred = None
        advanced: tuple = ()
        if evidence:
            pred, advanced = self._evidence(s, a, (r, s2, term, trunc))
        self._par(lambda k: None if k in advanced else self.groups[k].engine.advance(s, a, r, s2, term, trunc),
                  range(len(self.groups)))
        self._cache = None
        return pred

    def _evidence(self, s: int, a: int, transition: tuple | None = None) -> tuple[np.ndarray, tuple]:
        """Score action a at s and condition on it; with ``transition``, the compiled engines also
        advance (in the same pass). Returns (the predictive, the groups that advanced)."""
        pred = self._predict(s, evidence=a, transition=transition)
        advanced = getattr(self, "_advanced", ()) if transition is not None else ()
        self._advanced = ()
        self.mix_log_loss.append(-math.log2(pred[a]))
        done = self._fused
        self._par(lambda k: None if k in done else self._add_loglik(k, a), range(len(self.groups)))
        self._fused = ()
        self._cache = None   # the weights changed
        if self.family is not None:
            self.family.evidence(s, a)
        self.n_evidence += 1
        self._act_age += 1
        for k, m in getattr(self, "_fused_max", {}).items():
            self._lwmax[k] = (self.logw[k], self.n_evidence, m)
        self._fused_max = {}
        return pred, advanced

    def _add_loglik(self, k: int, a: int) -> None:
        eng = self.groups[k].engine
        if getattr(eng, "backend", None) == "numba":
            eng.add_loglik(a, self.logw[k])
        else:
            self.logw[k] += eng.loglik(a)

    def predict_history(self, history: Any, *, progress: bool = False, watch: Sequence[str | Program] = (),
                        start: int = 0, watch_equivalent: bool = False) -> np.ndarray:
        """Teacher-forced fast path: the predictive before every step of ``history`` ([T, A]),
        conditioning the mixture on it (identical to the step loop of ``action_probs`` then
        ``observe(..., intervention=False)``).

        ``watch``: programs whose class posterior mass is recorded after every step, in
        ``self.watch_trace`` ([T, len(watch)]). ``start``: begin at that step (the mixture has
        already seen the steps before it); rows before ``start`` of the result are not filled.
        ``watch_equivalent``: also record, in ``self.watch_equivalent_trace`` [T], the posterior
        mass of the hypotheses whose action distributions equalled the first watched program's
        (to 1e-9) at every step so far -- the programs this history cannot tell from it."""
        self._check_history(history)
        T = len(history)
        out = np.full((T, self.n_actions), np.nan)
        obs = np.asarray(history.obs).astype(np.int64).reshape(T)
        act = np.asarray(history.action).astype(np.int64)
        rew = np.asarray(history.reward, dtype=np.float64)
        term = np.asarray(history.terminated, dtype=bool)
        trunc = np.asarray(history.truncated, dtype=bool)
        nxt = np.empty(T, dtype=np.int64)
        nxt[:-1] = obs[1:]
        done = np.flatnonzero(term | trunc)
        for t in done:
            nxt[t] = int(np.asarray(history.next_obs(int(t))).reshape(()))
        if T and not (term[-1] or trunc[-1]):
            try:
                nxt[-1] = int(np.asarray(history.next_obs(T - 1)).reshape(()))
            except (KeyError, IndexError):
                nxt[-1] = -1  # the successor of the last step was not recorded
        watched = [self._class_rows(w) for w in watch]
        self.watch_trace = np.zeros((T, len(watched)))
        agree = None
        if watch_equivalent:
            self.watch_equivalent_trace = np.zeros(T)
        if watch_equivalent and watched and watched[0].size:
            rep = int(watched[0][0])
            n_exp = sum(g.engine.n for g in self.groups if g.name != "family")
            agree = np.zeros(self.n_hypotheses, dtype=bool)
            agree[:n_exp] = True
        it = range(T)
        if progress:
            from tqdm import tqdm

            it = tqdm(it, desc="mixture", unit="step", unit_scale=True, mininterval=0.5)
        if not 0 <= start <= T:
            raise ValueError(f"start {start} outside a {T}-step history")
        for t in it:
            if t < start:
                continue
            s = int(obs[t])
            if agree is not None:
                for g in self.groups:
                    g.engine.prepare(s)
                P = np.concatenate([g.engine.all_probs() for g in self.groups if g.name != "family"])
                agree[:P.shape[0]] &= np.abs(P - P[rep][None, :]).max(axis=1) <= 1e-9
            s2 = int(nxt[t])
            if s2 < 0:
                # last step of a history cut mid-episode: evidence only, no transition to learn from
                # (a learner would need the next observation); the state is left before the update
                out[t] = self._evidence_only(s, int(act[t]))
            else:
                out[t] = self._step(s, int(act[t]), float(rew[t]), s2, bool(term[t]), bool(trunc[t]), True)
            if watched:
                self.watch_trace[t] = self._watch_masses(watched)
            if agree is not None:
                self.watch_equivalent_trace[t] = self._watch_masses([np.flatnonzero(agree)])[0]
        return out

    def _class_rows(self, program: str | Program) -> np.ndarray:
        info = self.class_info(program)
        if info["family_mass"] > 0:
            raise ValueError("watching classes with family members is not supported; watch explicit programs")
        return np.array(info["hypotheses"], dtype=np.int64)

    def _watch_masses(self, watched: list[np.ndarray]) -> np.ndarray:
        lw = np.concatenate(self.logw)
        m = lw.max()
        logz = m + math.log(float(np.exp(lw - m).sum()))
        return np.array([float(np.exp(lw[r] - logz).sum()) if r.size else 0.0 for r in watched])

    def _evidence_only(self, s: int, a: int) -> np.ndarray:
        pred, _ = self._evidence(s, a)
        self._cache = None
        return pred

    def _check_history(self, history: Any) -> None:
        if history.n_actions != self.n_actions:
            raise HistoryMismatch(f"history has {history.n_actions} actions, the grammar {self.n_actions}")
        obs = np.asarray(history.obs)
        if obs.ndim > 1 and int(np.prod(obs.shape[1:])) != 1:
            raise HistoryMismatch(f"history observations have shape {obs.shape[1:]}; the grammar needs state indices")
        if len(history) and (obs.min() < 0 or obs.max() >= self.n_states or np.any(obs != np.round(obs))):
            raise HistoryMismatch(f"history observations span {obs.min()}..{obs.max()}, the grammar has {self.n_states} states")

    def condition(self, history: Any, *, progress: bool = False) -> "Mixture":
        """Show the mixture a teacher's history (evidence); returns self."""
        self.predict_history(history, progress=progress)
        return self

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
                groups.append(_Group(gr.name, eng, gr.log2w, gr.bits, gr.members, gr.refs))
                logw.append(lw.copy())
                log_prior.append(lp.copy())
                continue
            if keep.size == 0:
                continue
            eng = self._subset_engine(gr, keep)
            perm = getattr(eng, "variant_order", np.arange(keep.size))
            keep = keep[perm]
            self._transfer_state(gr.engine, eng, keep)
            ng = _Group(gr.name, eng, gr.log2w[keep], gr.bits[keep], gr.members[keep], [gr.refs[i] for i in keep])
            groups.append(ng)
            logw.append(lw[keep].copy())
            log_prior.append(lp[keep].copy())
            if fp is not None:
                fps.append(fp[keep])
        new.groups, new.logw, new.log_prior = groups, logw, log_prior
        new.fingerprints = np.concatenate(fps) if (self.fingerprints is not None and fps) else None
        new.family = next((g.engine for g in groups if g.name == "family"), None)
        new.mix_log_loss = list(self.mix_log_loss)
        new.rng = copy.deepcopy(self.rng)
        new._cache, new._act, new._act_age, new._pool = None, None, 0, None
        new.compacted_from = self.n_hypotheses
        return new

    @staticmethod
    def _transfer_state(old: Any, new: Any, keep: np.ndarray) -> None:
        """Copy the program states of rows ``keep`` of engine ``old`` into ``new``."""
        if isinstance(old, TDEngine):
            new.N = old.N.copy()
            new.pending = old.pending
            t_old = old.values_of_variants()[keep]
            t_new = new.values_of_variants()
            new.Q[:, :, t_new] = old.Q[:, :, t_old]
        elif isinstance(old, UCBEngine):
            new.N, new.sum = old.N.copy(), old.sum.copy()
        elif isinstance(old, ThompsonEngine):
            new.alpha, new.beta = old.alpha[keep].copy(), old.beta[keep].copy()

    # ------------------------------------------------------------------------------- beliefs
    def _flat(self, attr: str) -> np.ndarray:
        return np.concatenate([getattr(gr, attr) for gr in self.groups]) if self.groups else np.zeros(0)

    def posterior(self) -> np.ndarray:
        """Posterior mass of every hypothesis (explicit classes, then families), summing to 1."""
        lw = np.concatenate(self.logw)
        w = np.exp(lw - lw.max())
        return w / w.sum()

    @property
    def n_hypotheses(self) -> int:
        return sum(gr.engine.n for gr in self.groups)

    def n_programs(self) -> dict[str, float]:
        """Explicit classes evaluated per step, symbolic classes they hold, and family members."""
        explicit = sum(gr.engine.n for gr in self.groups if gr.name != "family")
        symbolic = int(sum(gr.members.sum() for gr in self.groups if gr.name != "family"))
        return {"explicit_classes": explicit, "symbolic_classes": symbolic,
                "family_members": self.space.n_family_members(), "code_words": self.space.n_code_words}

    def _locate(self, flat: int) -> tuple[_Group, int]:
        for gr in self.groups:
            if flat < gr.engine.n:
                return gr, flat
            flat -= gr.engine.n
        raise IndexError(flat)

    def _materialise(self, gr: _Group, i: int) -> Program:
        ref = gr.refs[i]
        if ref[0] == "td":
            return self.space.td_program(ref[1])
        if ref[0] == "prog":
            return ref[1]
        if ref[0] == "cyclic":
            fam = i
            return Cyclic(ref[1], self.family.cyclic_map_member(fam))
        d, k = ref[1], ref[2]
        fam = i - self.family.n_cyc
        tab = self.family.reactive_map_member(fam)
        return Reactive(d, k, tuple((int(s), int(a)) for s, a in enumerate(tab) if a != d))

    def top(self, k: int = 5) -> list[dict[str, Any]]:
        """The k most probable hypotheses: readable source, bits, posterior mass. A family is shown
        by its most probable member, with that member's own mass."""
        post = self.posterior()
        lw = np.log(np.maximum(post, 1e-300))
        cand = []
        order = np.argsort(-post)[: max(k * 3, k + 10)]
        for flat in order:
            gr, i = self._locate(int(flat))
            prog = self._materialise(gr, i)
            mass = float(post[flat])
            bits = float(gr.bits[i])
            class_bits = float(-gr.log2w[i])
            if gr.name == "family":
                if isinstance(prog, Cyclic):
                    mass = float(np.exp(lw[flat] + self.family.cyclic_member_log_post(i, prog.seq)))
                else:
                    tab = np.full(self.n_states, prog.default)
                    for s, a in prog.table:
                        tab[s] = a
                    mass = float(np.exp(lw[flat] + self.family.reactive_member_log_post(i - self.family.n_cyc, tab)))
                bits = self.grammar.bits(prog)
                class_bits = bits
            cand.append({"source": program_source(prog), "bits": bits, "class_bits": class_bits,
                         "members": int(gr.members[i]), "mass": mass, "kind": gr.name})
        cand.sort(key=lambda c: -c["mass"])
        return cand[:k]

    def format_top(self, k: int = 5) -> str:
        rows = self.top(k)
        w = max((len(r["source"]) for r in rows), default=0)
        return "\n".join(f"{r['source']:<{w}}  {r['bits']:.1f} bits  p={r['mass']:.3g}" for r in rows)

    # ---- equivalence classes ---------------------------------------------------------------
    def parse(self, text: str | Program) -> Program:
        """Parse program text (ProgramParseError on bad text; ValueError if not in this grammar)."""
        if isinstance(text, str):
            return self.grammar.parse(text)
        self.grammar.check(text)
        return text

    def _fingerprint_program(self, p: Program) -> np.ndarray | None:
        g, sm, A = self.grammar, self.smoothing, self.n_actions
        if isinstance(p, TD):
            t, v = _td_arrays_from_programs([p], g.bandit)
            eng = TDEngine(g, t, v, sm)
        elif isinstance(p, (Constant, Stochastic)):
            eng = FixedEngine(g, _fixed_probs([p], A), sm)
        elif isinstance(p, UCB1):
            eng = UCBEngine(g, np.array([float(p.c)]), sm)
        elif isinstance(p, Thompson):
            eng = ThompsonEngine(g, np.array([p.prior_alpha]), np.array([p.prior_beta]), sm)
        else:
            return None
        return fingerprint_engines([eng], self.probes, A)[0][0]

    def class_mass(self, program: str | Program) -> float:
        """Posterior mass of the class of programs equivalent to ``program`` (0.0 when no
        equivalent program is in the mixture). Program text is parsed (ProgramParseError)."""
        return self.class_info(program)["mass"]

    def class_info(self, program: str | Program) -> dict[str, Any]:
        p = self.parse(program)
        post = self.posterior()
        mass, found = 0.0, []
        if self.fingerprints is not None:
            fp = self._fingerprint_program(p)
            if fp is not None:
                hit = np.flatnonzero((self.fingerprints == fp[None, :]).all(axis=1))
                for h in hit:
                    mass += float(post[h])
                    found.append(int(h))
        else:
            # no dedup: exact program match among explicit hypotheses
            for flat in range(self.n_hypotheses):
                gr, i = self._locate(flat)
                if gr.name != "family" and self._materialise(gr, i) == p:
                    mass += float(post[flat])
                    found.append(flat)
        fam = self._family_mass(p, post)
        return {"program": program_source(p), "mass": mass + fam, "hypotheses": found, "family_mass": fam,
                "bits": self.grammar.bits(p)}

    def _family_mass(self, p: Program, post: np.ndarray) -> float:
        """Mass of family members equivalent to a deterministic stateless program."""
        fam = self.family
        if fam is None:
            return 0.0
        off = self.n_hypotheses - fam.n
        lw = np.log(np.maximum(post[off:], 1e-320))
        S = self.n_states
        const = None
        if isinstance(p, Constant):
            const = p.action
        elif isinstance(p, Stochastic) and sum(1 for c in p.counts if c) == 1:
            const = int(np.argmax(p.counts))
        elif isinstance(p, Cyclic) and len(set(p.seq)) == 1:
            const = p.seq[0]
        elif isinstance(p, Reactive) and not p.table:
            const = p.default
        table = None
        if const is not None:
            table = np.full(S, const)
        elif isinstance(p, Reactive):
            table = np.full(S, p.default)
            for s, a in p.table:
                table[s] = a
        total = 0.0
        for f in range(fam.n_cyc):
            clock, L = fam.cyclic[f]
            if const is not None:
                seq = [const] * L
            elif isinstance(p, Cyclic) and p.clock == clock and L % _min_period(p.seq) == 0:
                base = p.seq[:_min_period(p.seq)]
                seq = list(base) * (L // len(base))
            else:
                continue
            total += float(np.exp(lw[f] + fam.cyclic_member_log_post(f, seq)))
        if table is not None:
            for f in range(fam.n_react):
                total += float(np.exp(lw[fam.n_cyc + f] + fam.reactive_member_log_post(f, table)))
        return total

    # ---- values --------------------------------------------------------------------------------
    def value_table(self) -> tuple[np.ndarray, float]:
        """Posterior-mean value table [S, A] over the TD programs, and their total posterior mass."""
        for k, gr in enumerate(self.groups):
            if gr.name == "td":
                lw_all = np.concatenate(self.logw)
                m = lw_all.max()
                w = np.exp(self.logw[k] - m)
                total = float(np.exp(lw_all - m).sum())
                eng: TDEngine = gr.engine
                W = np.bincount(eng.values_of_variants(), weights=w, minlength=eng.n_tables)
                if W.sum() == 0:
                    return np.zeros((self.n_states, self.n_actions)), 0.0
                V = np.einsum("t,sat->sa", W / W.sum(), eng.Q)
                return V, float(W.sum() / total)
        return np.zeros((self.n_states, self.n_actions)), 0.0

    # ---- the bound -------------------------------------------------------------------------
    def bound_report(self) -> dict[str, Any]:
        """Per-sequence bound of every hypothesis h: ``L_mix <= L_h + bits_h + log2 Z`` with L_h its
        (smoothed) log-loss on the evidence so far and bits_h its (merged) description length."""
        L_mix = float(np.sum(self.mix_log_loss))
        lw = np.concatenate(self.logw)
        lp = np.concatenate(self.log_prior)
        L_h = (lp - lw) / LN2
        bits_h = -self._flat("log2w")
        slack = TB.bound_slack(L_mix, L_h, bits_h, self.log2_normaliser)
        i = int(np.argmin(slack))
        return {"steps": self.n_evidence, "mixture_log_loss_bits": L_mix, "min_slack_bits": float(slack[i]),
                "tightest": i, "log2_normaliser": self.log2_normaliser, "smoothing": self.smoothing}

    def check_bound(self, tol: float = 1e-6) -> dict[str, Any]:
        rep = self.bound_report()
        if rep["min_slack_bits"] < -tol:
            raise AssertionError(f"mixture bound violated by {-rep['min_slack_bits']:.3g} bits after "
                                 f"{rep['steps']} steps (hypothesis {rep['tightest']})")
        return rep

    def summary(self) -> dict[str, Any]:
        return {"space": self.space.summary(), "programs": self.n_programs(), "dedup": self.dedup_stats,
                "smoothing": self.smoothing, "evidence_steps": self.n_evidence}


def _min_period(seq: Sequence[int]) -> int:
    L = len(seq)
    for d in range(1, L + 1):
        if L % d == 0 and all(seq[i] == seq[i % d] for i in range(L)):
            return d
    return L


__all__ = ["Mixture", "HistoryMismatch", "BudgetError"]
