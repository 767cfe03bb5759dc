"""Enumeration of the programs of a grammar by description length, with a Levin compute budget.

``enumerate_programs(grammar, max_bits)`` returns every program of at most ``max_bits`` bits
(optionally also ``bits + log2(steps per prediction) <= max_kt``, Levin's Kt), with programs
that are *symbolically* the same function already merged by adding their prior weights:

* target trees with the same linear form (``r + g*max Q(s')`` and ``g*max Q(s') + r``);
* a gamma that a target cannot use (a g-term that cancels; every step terminal in a bandit);
* bandit targets whose bootstrap terms always vanish;
* stochastic policies with the same probabilities at different resolutions (2/4 = 1/2).

Merging never drops a program: the class keeps the summed weight and its shortest member as
representative. Behavioural equivalences the symbols do not show are found afterwards by
probing (``probe.py``). TD programs are held as arrays of part indices (there may be 10^5-10^6
of them); ``ProgramSpace.program(kind, i)`` materialises one.

Two kinds are *closed-form families* rather than lists: a cyclic sequence of period L (A^L
programs of equal length) and a reactive table with default action d and exception rate 2^-k
(every table obs -> action; A^S programs). The interpreter sums over all their members exactly
(their likelihoods factorise over positions / states), so they cost O(L A) or O(S A) per step
whatever their size. A cyclic family enters when its members fit the budget (all have the same
length); a reactive family enters when its shortest member (no exception) fits -- its longer
members come with it, which only adds hypotheses (the Kraft sum stays <= 1).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any, Sequence

import numpy as np

from learners.solomonoff.grammar import Grammar
from learners.solomonoff.prefix_code import KIND_TAG, codes_order, codes_truncation, explore_bits, iter_exprs
from learners.solomonoff.syntax import (SCHEDULE_SHAPES, TD, UCB1, Constant, Explore, Leaf, LinearTarget, Schedule,
                                        Stochastic, Thompson,
                                        expr_has_gamma, linear_form)
from theory import codes as C

PARTS = ("init", "alpha", "target", "gamma", "explore")


class BudgetError(ValueError):
    """A budget that holds no program (or a malformed budget)."""


# ---------------------------------------------------------------------------------------------
# Compute model: primitive operations per predicted action (for Levin's Kt and the speed prior)
# ---------------------------------------------------------------------------------------------
def td_steps(n_actions: int, explore_kind: str, pi_dependent: bool) -> int:
    """Read Q[s'] and reduce it (2A), the policy at s' if the target needs it (2A), the target
    and the update (8), then the action rule at the next state (2A greedy/eps, 4A softmax/bonus)."""
    A = n_actions
    act = {"greedy": 2 * A, "eps_greedy": 2 * A, "softmax": 4 * A, "count_bonus": 4 * A}[explore_kind]
    return 2 * A + (2 * A if pi_dependent else 0) + 8 + act


def kind_steps(kind: str, n_actions: int) -> int:
    A = n_actions
    return {"UCB1": 4 * A, "Thompson": 80 * A * A, "Constant": 1, "Stochastic": A, "Cyclic": 2, "Reactive": 2}[kind]


# ---------------------------------------------------------------------------------------------
# The enumerated space
# ---------------------------------------------------------------------------------------------
@dataclass
class TDParts:
    inits: list[Fraction]
    init_bits: np.ndarray
    alphas: list[Fraction | None]
    alpha_bits: np.ndarray
    forms: list[LinearTarget]             # distinct (effective) linear forms
    trees: list[Any]                      # representative tree per target item
    item_form: np.ndarray                 # target item -> form id
    item_has_g: np.ndarray                # target item codes a gamma
    item_bits: np.ndarray
    item_mult: np.ndarray                 # number of trees of that form, g-ness and length
    gammas: list[Fraction]
    gamma_bits: np.ndarray
    explores: list[Explore]
    explore_bits: np.ndarray


@dataclass
class ProgramSpace:
    """Everything enumerated for one grammar and budget (before behavioural dedup)."""

    grammar: Grammar
    max_bits: float
    max_kt: float | None
    prior: str
    td_parts: TDParts | None
    # TD classes (symbolic): part indices, representative bits, log2 of summed weight, steps
    td: dict[str, np.ndarray]
    # small explicit kinds: lists of (program, rep bits, log2 weight, steps)
    fixed: list[tuple[Any, float, float, int]]      # Constant and Stochastic
    ucb: list[tuple[Any, float, float, int]]
    thompson: list[tuple[Any, float, float, int]]
    # closed-form families
    cyclic: list[tuple[str, int, float, float]]     # (clock, period, member bits, log2 family weight)
    reactive: list[tuple[int, int, float, float]]   # (default, k, prefix bits, log2 family weight)
    counts: dict[str, list[int]] = field(default_factory=dict)   # programs by ceil(bits), per kind
    n_code_words: int = 0                                          # programs before symbolic merging
    kind_caps: dict[str, float] = field(default_factory=dict)     # bit budget of each kind
    part_budgets: dict[str, float] = field(default_factory=dict)  # caps on TD parts

    # ---- sizes ---------------------------------------------------------------------------------
    @property
    def n_td(self) -> int:
        return int(self.td["bits"].size) if self.td else 0

    def n_explicit(self) -> int:
        return self.n_td + len(self.fixed) + len(self.ucb) + len(self.thompson)

    def n_family_members(self) -> float:
        """How many programs the closed-form families hold (A^L per cyclic family, A^S per reactive)."""
        A, S = self.grammar.n_actions, self.grammar.n_states
        return float(sum(A ** L for _, L, _, _ in self.cyclic) + len(self.reactive) * float(A) ** S)

    def log2_weights(self) -> np.ndarray:
        """log2 prior weights (unnormalised) of every explicit class and family."""
        parts = [self.td["log2w"]] if self.n_td else []
        for lst in (self.fixed, self.ucb, self.thompson):
            parts.append(np.array([w for _, _, w, _ in lst]))
        parts.append(np.array([w for *_, w in self.cyclic]))
        parts.append(np.array([w for *_, w in self.reactive]))
        return np.concatenate([p for p in parts if p.size])

    def log2_normaliser(self) -> float:
        w = self.log2_weights()
        m = w.max()
        return float(m + np.log2(np.sum(np.exp2(w - m))))

    # ---- materialise -------------------------------------------------------------------------
    def td_program(self, i: int) -> TD:
        P, d = self.td_parts, self.td
        tree = P.trees[int(d["target"][i])]
        g = int(d["gamma_code"][i])
        return TD(P.inits[int(d["init"][i])], P.alphas[int(d["alpha"][i])], tree,
                  P.gammas[g] if g >= 0 else None, P.explores[int(d["explore"][i])],
                  P.forms[int(d["form"][i])].act_first, P.forms[int(d["form"][i])].trunc_terminal)

    def summary(self) -> dict[str, Any]:
        return {
            "max_bits": self.max_bits, "max_kt": self.max_kt, "prior": self.prior,
            "kind_budgets": self.kind_caps, "part_budgets": self.part_budgets,
            "n_states": self.grammar.n_states, "n_actions": self.grammar.n_actions, "bandit": self.grammar.bandit,
            "code_words": self.n_code_words,
            "explicit_classes": self.n_explicit(),
            "td_classes": self.n_td, "fixed": len(self.fixed), "ucb1": len(self.ucb), "thompson": len(self.thompson),
            "cyclic_families": len(self.cyclic), "reactive_families": len(self.reactive),
            "family_members": self.n_family_members(),
            "log2_normaliser": self.log2_normaliser(),
            "counts_by_bits": self.counts,
        }


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def _cross(left_bits: np.ndarray, right_bits: np.ndarray, limit: float) -> tuple[np.ndarray, np.ndarray]:
    """All pairs (i, j) with left_bits[i] + right_bits[j] <= limit; right_bits must be sorted."""
    cnt = np.searchsorted(right_bits, limit - left_bits + 1e-9, side="right")
    i = np.repeat(np.arange(left_bits.size), cnt)
    starts = np.cumsum(cnt) - cnt
    j = np.arange(i.size) - np.repeat(starts, cnt)
    return i, j


def _sorted_part(values: list, bits: list) -> tuple[list, np.ndarray]:
    order = sorted(range(len(values)), key=lambda k: bits[k])
    return [values[k] for k in order], np.array([bits[k] for k in order], dtype=np.float64)


def _count_hist(bits: np.ndarray, mult: np.ndarray | None, max_bits: float) -> list[int]:
    top = int(math.ceil(max_bits - 1e-9))
    b = np.ceil(np.asarray(bits) - 1e-9).astype(np.int64)
    return [int(x) for x in np.bincount(b, weights=mult, minlength=top + 1)[: top + 1].round()]


# ---------------------------------------------------------------------------------------------
# TD programs
# ---------------------------------------------------------------------------------------------
def _schedules(max_bits: float) -> list[tuple[Fraction, Schedule | None]]:
    """(start epsilon, schedule) pairs whose epsilon word (``prefix_code.schedule_encode``) has at
    most ``max_bits`` bits: constants, then every start x per x shape x rate x floor that fits."""
    out: list[tuple[Fraction, Schedule | None]] = [(v, None) for v, _ in C.unit_rationals(int(max_bits - 1))]
    starts = [(Fraction(1), 2)] + [(v, 2 + b) for v, b in C.unit_rationals(int(max_bits - 2))]
    for eps0, b0 in starts:
        room = max_bits - b0 - 2            # after start, per and the shortest shape word
        n = 2
        while C.elias_gamma_bits(n - 1) + 1 <= room:
            left = room - C.elias_gamma_bits(n - 1)
            floors = [Fraction(0)]
            m = 2
            while 1 + C.elias_gamma_bits(m - 1) <= left:
                floors.append(Fraction(1, m))
                m += 1
            for per in ("episode", "step"):
                for shape in SCHEDULE_SHAPES:     # (too long ones are dropped by ``action_rules``)
                    out += [(eps0, Schedule(per, shape, Fraction(1, n), f)) for f in floors]
            n += 1
    return out


def action_rules(g: Grammar, max_bits: float) -> list[Explore]:
    """Every action rule of ``g`` whose word has at most ``max_bits`` bits (with the ``ties`` and
    ``eps_schedule`` variants, their words included)."""
    if max_bits < 2:
        return []
    tie_kinds = ("uniform", "first") if g.ties else ("uniform",)
    room = max_bits - 2 - (1 if g.ties else 0)     # after the kind tag (and the tie bit)
    ex: list[Explore] = [Explore("greedy", ties=t) for t in tie_kinds if room >= 0]
    eps = _schedules(room) if g.schedules else [(v, None) for v, _ in C.unit_rationals(int(room))]
    ex += [Explore("eps_greedy", v, t, sch) for t in tie_kinds for v, sch in eps]
    for kind in ("softmax", "count_bonus"):
        ex += [Explore(kind, v) for v, _ in C.powers_of_two(int(max_bits - 2))]
    return [e for e in ex if explore_bits(e, g.ties, g.schedules) <= max_bits + 1e-9]


def _td_parts(g: Grammar, max_part: dict[str, float]) -> TDParts:
    inits, ib = _sorted_part(*zip(*C.signed_rationals(int(max_part["init"])))) if max_part["init"] >= 1 else ([], np.zeros(0))
    alphas = [None] + [v for v, _ in C.unit_rationals(int(max_part["alpha"] - 1))] if max_part["alpha"] >= 1 else []
    abits = [1] + [1 + b for _, b in C.unit_rationals(int(max_part["alpha"] - 1))] if max_part["alpha"] >= 1 else []
    alphas, ab = _sorted_part(alphas, abits) if alphas else ([], np.zeros(0))
    gammas, gb = _sorted_part(*zip(*C.unit_rationals(int(max_part["gamma"])))) if max_part["gamma"] >= 1 else ([], np.zeros(0))
    ex = action_rules(g, max_part["explore"])
    explores, eb = _sorted_part(ex, [explore_bits(e, g.ties, g.schedules) for e in ex]) if ex else ([], np.zeros(0))
    # target items: (effective form, codes-gamma, bits) with multiplicity and a representative tree
    forms: dict[LinearTarget, int] = {}
    items: dict[tuple[int, bool, int], list] = {}
    for tree, b in iter_exprs(int(max_part["target"])):
        f = linear_form(tree)
        if g.bandit:
            f = f.terminal_only()
        # with the act-first variant, a target without Q(s',a') is followed by its order bit, and
        # with the truncation variant a target with a g-term by its truncation bit (the item's
        # bits include them): '0' the plain grammar's behaviour, '1' the variant's
        variants = [(f, b)]
        if codes_order(tree, g.orders):
            variants = [(fv, bv + 1) for v, bv in variants for fv in (v, replace(v, act_first=True))]
        if codes_truncation(tree, g.truncations):
            variants = [(fv, bv + 1) for v, bv in variants for fv in (v, replace(v, trunc_terminal=True))]
        for fv, bv in variants:
            if bv > max_part["target"]:
                continue
            fid = forms.setdefault(fv, len(forms))
            key = (fid, expr_has_gamma(tree), bv)
            if key in items:
                items[key][1] += 1
            else:
                items[key] = [tree, 1]
    keys = sorted(items, key=lambda k: (k[2], k[0], k[1]))
    return TDParts(
        inits=list(inits), init_bits=ib, alphas=list(alphas), alpha_bits=ab,
        forms=list(forms), trees=[items[k][0] for k in keys],
        item_form=np.array([k[0] for k in keys], dtype=np.int64), item_has_g=np.array([k[1] for k in keys], dtype=bool),
        item_bits=np.array([k[2] for k in keys], dtype=np.float64), item_mult=np.array([items[k][1] for k in keys], dtype=np.float64),
        gammas=list(gammas), gamma_bits=gb, explores=list(explores), explore_bits=eb)


def _enumerate_td(g: Grammar, max_bits: float, max_kt: float | None, prior: str,
                  part_max: dict[str, float] | None) -> tuple[TDParts | None, dict[str, np.ndarray], list[int], int]:
    kind_bits = len(KIND_TAG["TD"])
    mins = {"init": 1, "alpha": 1, "target": 2, "gamma": 0, "explore": 2}
    room = max_bits - kind_bits
    if room < sum(mins.values()):
        return None, {}, [], 0
    max_part = {p: room - (sum(mins.values()) - mins[p]) for p in PARTS}
    max_part["gamma"] = room - (sum(mins.values()) - mins["gamma"]) - 1  # a gamma comes with a g-leaf (3 bits, not 2)
    for p, v in (part_max or {}).items():
        if p not in PARTS:
            raise BudgetError(f"unknown program part {p!r} in part budgets (parts: {', '.join(PARTS)})")
        max_part[p] = min(max_part[p], float(v))
    P = _td_parts(g, max_part)
    if not (len(P.inits) and len(P.alphas) and P.item_bits.size and len(P.explores)):
        return P, {}, [], 0
    lim = max_bits - kind_bits
    min_after = {  # cheapest completion after each stage
        "init": P.alpha_bits.min() + P.item_bits.min() + P.explore_bits.min(),
        "alpha": P.item_bits.min() + P.explore_bits.min(),
        "target": P.explore_bits.min(),
    }
    # stage 1: init x alpha
    i1, i2 = _cross(P.init_bits, P.alpha_bits, lim - min_after["alpha"])
    bits = P.init_bits[i1] + P.alpha_bits[i2]
    # stage 2: x target items
    j, t = _cross(bits, P.item_bits, lim - min_after["target"])
    init_i, alpha_i, item_i = i1[j], i2[j], t
    bits = bits[j] + P.item_bits[t]
    # stage 3: x gamma for items that code one
    has_g = P.item_has_g[item_i]
    gi_rows, gi = _cross(bits[has_g], P.gamma_bits, lim - min_after["target"]) if len(P.gammas) else (np.zeros(0, np.int64),) * 2
    sel_g = np.flatnonzero(has_g)[gi_rows]
    no_g = np.flatnonzero(~has_g)
    rows = np.concatenate([no_g, sel_g])
    gamma_i = np.concatenate([np.full(no_g.size, -1), gi]).astype(np.int64)
    bits = np.concatenate([bits[no_g], bits[sel_g] + P.gamma_bits[gi] if gi.size else np.zeros(0)])
    init_i, alpha_i, item_i = init_i[rows], alpha_i[rows], item_i[rows]
    # stage 4: x explore
    k, e = _cross(bits, P.explore_bits, lim)
    init_i, alpha_i, item_i, gamma_i = init_i[k], alpha_i[k], item_i[k], gamma_i[k]
    explore_i = e
    bits = bits[k] + P.explore_bits[e] + kind_bits
    mult = P.item_mult[item_i]
    n_words = int(mult.sum())
    form_i = P.item_form[item_i]
    uses_g = np.array([f.uses_gamma for f in P.forms])[form_i]
    pi_dep = np.array([bool(f.exp or f.next) for f in P.forms])[form_i]
    ekinds = np.array([x.kind for x in P.explores])
    steps = np.zeros(bits.size, dtype=np.float64)
    for kind in ("greedy", "eps_greedy", "softmax", "count_bonus"):
        for dep in (False, True):
            m = (ekinds[explore_i] == kind) & (pi_dep == dep)
            steps[m] = td_steps(g.n_actions, kind, dep)
    if max_kt is not None:
        ok = bits + np.log2(steps) <= max_kt + 1e-9
        init_i, alpha_i, item_i, gamma_i, explore_i, bits, mult, form_i, uses_g, steps = (
            x[ok] for x in (init_i, alpha_i, item_i, gamma_i, explore_i, bits, mult, form_i, uses_g, steps))
    counts = _count_hist(bits, mult, max_bits)
    eff_bits = bits + (np.log2(steps) if prior == "speed" else 0.0)
    # symbolic merge: (init, alpha, form, gamma if used, explore)
    gamma_eff = np.where(uses_g, gamma_i, -1)
    radix = [len(P.inits), len(P.alphas), len(P.forms), len(P.gammas) + 1, len(P.explores)]
    key = np.zeros(bits.size, dtype=np.int64)
    for col, r in zip((init_i, alpha_i, form_i, gamma_eff + 1, explore_i), radix):
        key = key * r + col
    order = np.lexsort((np.arange(bits.size), eff_bits, key))
    key_sorted = key[order]
    first = np.flatnonzero(np.r_[True, key_sorted[1:] != key_sorted[:-1]])
    # summed weights: log2 sum mult 2^-eff_bits, relative to the representative for precision
    rep = order[first]
    group = np.cumsum(np.r_[True, key_sorted[1:] != key_sorted[:-1]]) - 1
    rel = np.exp2(eff_bits[rep][group] - eff_bits[order]) * mult[order]
    s = np.bincount(group, weights=rel)
    log2w = -eff_bits[rep] + np.log2(s)
    td = {"init": init_i[rep], "alpha": alpha_i[rep], "target": item_i[rep], "form": form_i[rep],
          "gamma_code": gamma_i[rep], "gamma": gamma_eff[rep], "explore": explore_i[rep], "bits": bits[rep],
          "log2w": log2w, "steps": steps[rep]}
    return P, td, counts, n_words


# ---------------------------------------------------------------------------------------------
# Everything
# ---------------------------------------------------------------------------------------------
def enumerate_programs(grammar: Grammar, max_bits: float, *, max_kt: float | None = None, prior: str = "length",
                       part_budgets: dict[str, float] | None = None, kinds: Sequence[str] | None = None,
                       kind_budgets: dict[str, float] | None = None) -> ProgramSpace:
    """Every program of ``grammar`` with at most ``max_bits`` bits (and Kt <= ``max_kt``).

    ``prior``: "length" (weight 2^-bits) or "speed" (2^-bits / steps per prediction, i.e. 2^-Kt).
    ``part_budgets`` optionally caps the bits of TD parts (init, alpha, target, gamma, explore):
    a box inside the budget, for reaching long parameters without every long combination.
    ``kinds`` restricts the program kinds (default: all of the grammar's); ``kind_budgets`` caps
    the bits of some kinds below ``max_bits`` (e.g. reach long TD programs without every long
    stochastic policy). Raises ``BudgetError`` when nothing fits."""
    if not (isinstance(max_bits, (int, float)) and math.isfinite(max_bits)):
        raise BudgetError(f"max_bits must be a finite number, got {max_bits!r}")
    if prior not in ("length", "speed"):
        raise BudgetError(f"prior must be 'length' or 'speed', got {prior!r}")
    g = grammar
    A, S = g.n_actions, g.n_states
    use = set(g.kinds() if kinds is None else kinds)
    unknown = (use | set(kind_budgets or {})) - set(g.kinds())
    if unknown:
        raise BudgetError(f"kinds {sorted(unknown)} are not in this grammar (kinds: {', '.join(g.kinds())})")
    caps = {k: min(float(max_bits), float((kind_budgets or {}).get(k, max_bits))) for k in g.kinds()}

    def fits(bits: float, kind: str) -> bool:
        if bits > caps[kind] + 1e-9:
            return False
        return max_kt is None or bits + math.log2(kind_steps(kind, A)) <= max_kt + 1e-9

    def eff(bits: float, kind: str) -> float:
        return bits + (math.log2(kind_steps(kind, A)) if prior == "speed" else 0.0)

    counts: dict[str, list[int]] = {}
    words = 0
    P, td = None, {}
    if "TD" in use:
        P, td, c, n = _enumerate_td(g, caps["TD"], max_kt, prior, part_budgets)
        if c:
            counts["TD"] = c
        words += n
    fixed: list[tuple[Any, float, float, int]] = []
    if "Constant" in use:
        b = g.bits(Constant(0))
        if fits(b, "Constant"):
            fixed += [(Constant(a), b, -eff(b, "Constant"), kind_steps("Constant", A)) for a in range(A)]
            counts["Constant"] = _count_hist(np.full(A, b), None, max_bits)
            words += A
    if "Stochastic" in use:
        by_value: dict[tuple, list] = {}
        all_bits = []
        m = 2
        while len(KIND_TAG["Stochastic"]) + C.elias_gamma_bits(m - 1) <= caps["Stochastic"]:
            b = len(KIND_TAG["Stochastic"]) + C.elias_gamma_bits(m - 1) + math.log2(math.comb(m + A - 1, A - 1))
            if fits(b, "Stochastic"):
                for comp in _compositions(m, A):
                    all_bits.append(b)
                    gcd = math.gcd(*comp)
                    val = tuple(c // gcd for c in comp)
                    w = 2.0 ** -eff(b, "Stochastic")
                    if val in by_value:
                        by_value[val][2] += w
                    else:
                        by_value[val] = [Stochastic(comp), b, w]
            m += 1
        for val, (prog, b, w) in by_value.items():
            fixed.append((prog, b, math.log2(w), kind_steps("Stochastic", A)))
        if all_bits:
            counts["Stochastic"] = _count_hist(np.array(all_bits), None, max_bits)
        words += len(all_bits)
    ucb, thompson = [], []
    if "UCB1" in use:
        room = caps["UCB1"] - len(KIND_TAG["UCB1"])
        for c, b in C.positive_rationals(int(math.floor(room + 1e-9))) if room >= 2 else []:
            bits = len(KIND_TAG["UCB1"]) + b
            if fits(bits, "UCB1"):
                ucb.append((UCB1(c), bits, -eff(bits, "UCB1"), kind_steps("UCB1", A)))
        if ucb:
            counts["UCB1"] = _count_hist(np.array([u[1] for u in ucb]), None, max_bits)
        words += len(ucb)
    if "Thompson" in use:
        room = caps["Thompson"] - len(KIND_TAG["Thompson"])
        a0 = 1
        while C.elias_gamma_bits(a0) + 1 <= room:
            b0 = 1
            while C.elias_gamma_bits(a0) + C.elias_gamma_bits(b0) <= room:
                p = Thompson(a0, b0)
                bits = g.bits(p)
                if fits(bits, "Thompson"):
                    thompson.append((p, bits, -eff(bits, "Thompson"), kind_steps("Thompson", A)))
                b0 += 1
            a0 += 1
        thompson.sort(key=lambda t: t[1])
        if thompson:
            counts["Thompson"] = _count_hist(np.array([t[1] for t in thompson]), None, max_bits)
        words += len(thompson)
    cyclic = []
    if "Cyclic" in use:
        hist = [0] * (int(math.ceil(max_bits - 1e-9)) + 1)
        for clock in g.clocks():
            L = 1
            while g.cyclic_prefix_bits(L) + L * g.action_bits <= caps["Cyclic"] + 1e-9:
                b = g.cyclic_prefix_bits(L) + L * g.action_bits
                if fits(b, "Cyclic"):
                    pre = g.cyclic_prefix_bits(L) + (math.log2(kind_steps("Cyclic", A)) if prior == "speed" else 0.0)
                    cyclic.append((clock, L, b, -pre))
                    hist[int(math.ceil(b - 1e-9))] += A ** L
                    words += A ** L
                L += 1
        if cyclic:
            counts["Cyclic"] = hist
    reactive = []
    if "Reactive" in use:
        hist = [0] * (int(math.ceil(max_bits - 1e-9)) + 1)
        k = 1
        while g.reactive_prefix_bits(k) <= caps["Reactive"] + 1e-9:
            b = g.reactive_prefix_bits(k) + g.reactive_exception_bits(k, 0)
            if fits(b, "Reactive"):
                pre = g.reactive_prefix_bits(k) + (math.log2(kind_steps("Reactive", A)) if prior == "speed" else 0.0)
                for d in range(A):
                    reactive.append((d, k, g.reactive_prefix_bits(k), -pre))
                for e in range(S + 1):
                    be = g.reactive_prefix_bits(k) + g.reactive_exception_bits(k, e)
                    if be > caps["Reactive"] + 1e-9:
                        break
                    n = A * math.comb(S, e) * (A - 1) ** e
                    hist[int(math.ceil(be - 1e-9))] += n
                    words += n
            k += 1
        if reactive:
            counts["Reactive"] = hist
    space = ProgramSpace(grammar=g, max_bits=float(max_bits), max_kt=max_kt, prior=prior, td_parts=P, td=td,
                         fixed=fixed, ucb=ucb, thompson=thompson, cyclic=cyclic, reactive=reactive,
                         counts=counts, n_code_words=words, kind_caps=caps, part_budgets=dict(part_budgets or {}))
    if space.n_explicit() == 0 and not cyclic and not reactive:
        shortest = _shortest_program_bits(g)
        raise BudgetError(f"no program of this grammar fits in {max_bits} bits"
                          + (f" with Kt <= {max_kt}" if max_kt is not None else "")
                          + f" (the shortest program has {shortest:.2f} bits)")
    return space


def _shortest_program_bits(g: Grammar) -> float:
    shortest = {"TD": lambda: g.bits(TD(Fraction(0), None, Leaf("r"), None, Explore("greedy"))),
                "Constant": lambda: g.bits(Constant(0)), "UCB1": lambda: g.bits(UCB1(Fraction(1))),
                "Thompson": lambda: g.bits(Thompson(1, 1)),
                "Stochastic": lambda: g.bits(Stochastic((1, 1) + (0,) * (g.n_actions - 2))),
                "Cyclic": lambda: g.cyclic_prefix_bits(1) + g.action_bits,
                "Reactive": lambda: g.reactive_prefix_bits(1) + g.reactive_exception_bits(1, 0)}
    return min(f() for k, f in shortest.items() if k in g.kinds())


def _compositions(m: int, k: int):
    """All k-tuples of non-negative integers summing to m (stars and bars), lexicographic."""
    if k == 1:
        yield (m,)
        return
    for first in range(m, -1, -1):
        for rest in _compositions(m - first, k - 1):
            yield (first,) + rest


__all__ = ["enumerate_programs", "action_rules", "ProgramSpace", "BudgetError", "td_steps", "kind_steps"]
