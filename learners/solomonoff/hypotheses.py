"""The mixture's hypotheses: built from a ``ProgramSpace`` as engines, merged when they behave alike.

Every enumerated program becomes a row of an engine (``interpreter``): TD classes share value
tables, fixed policies are one matrix, bandit programs share counts, cyclic and reactive
families are closed-form hypotheses. Programs that act identically on the probe histories
(``probe``) are merged into one hypothesis whose prior weight is the sum of theirs (never
dropped); its representative is the shortest member.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from learners.solomonoff.enumerate import ProgramSpace
from learners.solomonoff.interpreter import FamilyEngine, FixedEngine, TDEngine, ThompsonEngine, UCBEngine
from learners.solomonoff.probe import fingerprint_engines
from learners.solomonoff.syntax import (SCHEDULE_PER, SCHEDULE_SHAPES, TD, UCB1, Constant, Explore, Program, Stochastic,
                                        Thompson)

EXPLORE_KIND = {"greedy": 0, "eps_greedy": 0, "softmax": 1, "count_bonus": 2}


#: the per-rule arrays of an action rule beyond its kind and parameter (``TDEngine``): first-index
#: ties, and the epsilon schedule (per: 0 constant, 1 episode, 2 step; shape: 0 exp, 1 linear)
RULE_FIELDS = ("first", "sched_per", "sched_shape", "sched_rate", "sched_floor")


def rule_arrays(explores: Sequence[Explore]) -> dict[str, np.ndarray]:
    """``RULE_FIELDS`` of each action rule."""
    sch = [e.schedule for e in explores]
    return {"first": np.array([e.ties == "first" for e in explores], dtype=bool),
            "sched_per": np.array([0 if x is None else 1 + SCHEDULE_PER.index(x.per) for x in sch], dtype=np.int64),
            "sched_shape": np.array([0 if x is None else SCHEDULE_SHAPES.index(x.shape) for x in sch], dtype=np.int64),
            "sched_rate": np.array([0.0 if x is None else float(x.rate) for x in sch]),
            "sched_floor": np.array([0.0 if x is None else float(x.floor) for x in sch])}


def td_arrays_from_programs(progs: Sequence[TD], bandit: bool) -> tuple[dict, dict]:
    """Tables + variants for a list of TD programs (one variant each; tables shared where the
    dynamics agree)."""
    keys: dict[tuple, int] = {}
    t_init, t_alpha, t_coef, t_gamma, t_pk, t_pp, t_def, t_tt = [], [], [], [], [], [], [], []
    v_table, v_kind, v_param = [], [], []
    t_rule: list[Explore] = []   # the action rule whose policy a table's target uses (if any)
    for p in progs:
        f = p.form.terminal_only() if bandit else p.form
        pi_dep = bool(f.exp or f.next)
        ek, ep = EXPLORE_KIND[p.explore.kind], float(p.explore.param or 0)
        gam = float(p.gamma) if (p.gamma is not None and f.uses_gamma) else 0.0
        key = (p.init, p.alpha, f.as_tuple(), f.act_first, f.trunc_terminal, gam, (ek, p.explore) if pi_dep else None)
        if key not in keys:
            keys[key] = len(keys)
            t_init.append(float(p.init))
            t_alpha.append(np.nan if p.alpha is None else float(p.alpha))
            t_coef.append([float(c) for c in f.as_tuple()])
            t_gamma.append(gam)
            t_pk.append(ek if pi_dep else -1)
            t_pp.append(ep if pi_dep else 0.0)
            t_def.append(f.waits_for_next_action)
            t_tt.append(f.trunc_terminal)
            t_rule.append(p.explore)
        v_table.append(keys[key])
        v_kind.append(ek)
        v_param.append(ep)
    tables = {"init": np.array(t_init), "alpha": np.array(t_alpha), "coef": np.array(t_coef).reshape(-1, 5),
              "gamma": np.array(t_gamma), "pi_kind": np.array(t_pk, dtype=np.int64), "pi_param": np.array(t_pp),
              "deferred": np.array(t_def, dtype=bool), "trunc_terminal": np.array(t_tt, dtype=bool)}
    tables.update({"pi_" + k: v for k, v in rule_arrays(t_rule).items()})
    variants = {"table": np.array(v_table, dtype=np.int64), "kind": np.array(v_kind, dtype=np.int64),
                "param": np.array(v_param)}
    variants.update(rule_arrays([p.explore for p in progs]))
    return tables, variants


def td_arrays_from_space(space: ProgramSpace, idx: np.ndarray) -> tuple[dict, dict]:
    """Tables + variants for TD classes ``idx`` of ``space``, vectorised (10^5+ classes)."""
    P, d = space.td_parts, space.td
    init_v = np.array([float(x) for x in P.inits])
    alpha_v = np.array([np.nan if x is None else float(x) for x in P.alphas])
    gamma_v = np.array([float(x) for x in P.gammas] + [0.0])          # index -1 -> 0.0
    coef_f = np.array([[float(c) for c in f.as_tuple()] for f in P.forms]).reshape(-1, 5)
    pidep_f = np.array([bool(f.exp or f.next) for f in P.forms])
    deferred_f = np.array([f.waits_for_next_action for f in P.forms], dtype=bool)
    trunc_f = np.array([f.trunc_terminal for f in P.forms], dtype=bool)
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
              "pi_kind": np.where(pd[f0], ek[ei[f0]], -1), "pi_param": np.where(pd[f0], ep[ei[f0]], 0.0),
              "deferred": deferred_f[fi[f0]], "trunc_terminal": trunc_f[fi[f0]]}
    rules = rule_arrays(P.explores)
    tables.update({"pi_" + k: np.where(pd[f0], v[ei[f0]], 0) for k, v in rules.items()})
    variants = {"table": inv, "kind": ek[ei], "param": ep[ei]}
    variants.update({k: v[ei] for k, v in rules.items()})
    return tables, variants


def fixed_probs(progs: Sequence[Program], A: int) -> np.ndarray:
    rows = []
    for p in progs:
        if isinstance(p, Constant):
            rows.append(np.eye(A)[p.action])
        else:
            rows.append(np.asarray(p.counts, dtype=np.float64) / sum(p.counts))
    return np.array(rows).reshape(-1, A)


@dataclass
class HypothesisGroup:
    """The hypotheses of one engine: their engine, prior weights and how to print them."""

    name: str
    engine: Any
    log2w: np.ndarray     # log2 of the (merged) prior weight, unnormalised
    bits: np.ndarray      # description bits of the representative
    members: np.ndarray   # number of symbolic classes merged into each
    refs: list            # per hypothesis: how to materialise its representative



def engine_for_program(p: Program, grammar: Any, smoothing: float) -> Any:
    """A one-row engine running program ``p`` (None for the family kinds, which have no row)."""
    A = grammar.n_actions
    if isinstance(p, TD):
        t, v = td_arrays_from_programs([p], grammar.bandit)
        return TDEngine(grammar, t, v, smoothing)
    if isinstance(p, (Constant, Stochastic)):
        return FixedEngine(grammar, fixed_probs([p], A), smoothing)
    if isinstance(p, UCB1):
        return UCBEngine(grammar, np.array([float(p.c)]), smoothing)
    if isinstance(p, Thompson):
        return ThompsonEngine(grammar, np.array([p.prior_alpha]), np.array([p.prior_beta]), smoothing)
    return None


class HypothesisBuilding:
    """Building, merging, sharding and subsetting the mixture's engines (a part of ``Mixture``)."""

    def _build(self, dedup: bool, progress: bool) -> list[HypothesisGroup]:
        sp, g, A, sm = self.space, self.grammar, self.grammar.n_actions, self.smoothing
        cands: list[HypothesisGroup] = []
        if sp.n_td:
            idx = np.arange(sp.n_td)
            t, v = td_arrays_from_space(sp, idx)
            eng = TDEngine(g, t, v, sm)
            rows = eng.variant_order  # engine row -> class index
            cands.append(HypothesisGroup("td", eng, sp.td["log2w"][rows], sp.td["bits"][rows], np.ones(rows.size, np.int64),
                                [("td", int(i)) for i in rows]))
        if sp.fixed:
            progs = [p for p, *_ in sp.fixed]
            cands.append(HypothesisGroup("fixed", FixedEngine(g, fixed_probs(progs, A), sm),
                                np.array([w for _, _, w, _ in sp.fixed]), np.array([b for _, b, _, _ in sp.fixed]),
                                np.ones(len(progs), np.int64), [("prog", p) for p in progs]))
        if sp.ucb:
            cands.append(HypothesisGroup("ucb1", UCBEngine(g, np.array([float(p.c) for p, *_ in sp.ucb]), sm),
                                np.array([w for _, _, w, _ in sp.ucb]), np.array([b for _, b, _, _ in sp.ucb]),
                                np.ones(len(sp.ucb), np.int64), [("prog", p) for p, *_ in sp.ucb]))
        if sp.thompson:
            cands.append(HypothesisGroup("thompson", ThompsonEngine(g, np.array([p.prior_alpha for p, *_ in sp.thompson]),
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
            cands.append(HypothesisGroup("family", fam,
                                np.array([w for *_, w in sp.cyclic] + [w for *_, w in sp.reactive]),
                                np.array([b for _, _, b, _ in sp.cyclic] + [b for _, _, b, _ in sp.reactive]),
                                np.ones(fam.n, np.int64),
                                [("cyclic", c, L) for c, L, _, _ in sp.cyclic] + [("reactive", d, k) for d, k, _, _ in sp.reactive]))
        self.family = fam if fam.n else None
        return cands

    def _merge(self, cands: list[HypothesisGroup], fps: list[np.ndarray]) -> list[HypothesisGroup]:
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
            ng = HypothesisGroup(c.name, eng, merged_log2w[sel], c.bits[keep], msum[sel].astype(np.int64), refs)
            ng.fp = allfp[reps[sel]]
            out.append(ng)
        self.dedup_stats_groups = {"classes": int(reps.size)}
        return [c for c in out if c.engine.n]

    def _shard_td(self, cands: list[HypothesisGroup], k: int) -> list[HypothesisGroup]:
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
                ng = HypothesisGroup("td", eng, c.log2w[keep], c.bits[keep], c.members[keep], [c.refs[i] for i in keep])
                if hasattr(c, "fp"):
                    ng.fp = c.fp[keep]
                out.append(ng)
        return out


    def _subset_engine(self, c: HypothesisGroup, keep: np.ndarray):
        g, sm = self.grammar, self.smoothing
        if c.name == "td":
            cls_idx = np.array([r[1] for r in (c.refs[i] for i in keep)], dtype=np.int64)
            t, v = td_arrays_from_space(self.space, cls_idx)
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

    @staticmethod
    def _transfer_state(old: Any, new: Any, keep: np.ndarray) -> None:
        """Copy the program states of rows ``keep`` of engine ``old`` into ``new``."""
        if isinstance(old, TDEngine):
            new.N = old.N.copy()
            new.pending = old.pending
            t_old = old.values_of_variants()[keep]
            t_new = new.values_of_variants()
            new.Q[:, :, t_new] = old.Q[:, :, t_old]
            new.set_clock(*old.clock)          # the epsilon schedules' state
        elif isinstance(old, UCBEngine):
            new.N, new.sum = old.N.copy(), old.sum.copy()
        elif isinstance(old, ThompsonEngine):
            new.alpha, new.beta = old.alpha[keep].copy(), old.beta[keep].copy()
