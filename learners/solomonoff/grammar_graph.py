"""The mixture's grammar as a typed graph, so that ``theory.grammar_graph`` counts its programs.

``grammar_graph(grammar, max_bits)`` turns a ``Grammar`` into the ``networkx.DiGraph`` that
``theory.grammar_graph`` describes and counts (nonterminals, productions, choices). It is read from
the grammar's own tables -- the kind, leaf, operator and action-rule tags of ``prefix_code``, the
grammar's kinds, clocks and variants, the lengths its ``Grammar`` methods give the cyclic and
reactive prefixes -- so a production added there appears here; a part whose code this module
cannot read (a new action rule's parameter, a new program kind) is a ``GrammarGraphError``, never
a silent miscount. Expression trees are typed by what they contain (a bootstrap ``g``-term, a
``Q(s',a')`` term), because the TD code adds an order bit, a truncation bit or a discount after the
tree depending on exactly that.

``grammar_counts`` is what ``enumerate_programs(grammar, max_bits).counts`` reports, computed by
the dynamic programme without enumerating; ``expression_gf`` / ``expression_growth_rate`` are the
closed forms of the target expression trees under this grammar's tags.
"""
from __future__ import annotations

import math
from fractions import Fraction

import networkx as nx
import sympy as sp

from learners.solomonoff import prefix_code as PC
from learners.solomonoff.syntax import Add, Const, Explore, Leaf, Schedule, expr_has_gamma
from theory import codes as C
from theory.grammar_graph import (GrammarGraphError, GraphBuilder, counts_by_ceil_bits, kind_counts,
                                  signed_rational_gf, tree_gf, tree_growth_rate, x)

#: The grammar variants whose code words the graph reads; a grammar holding another is refused.
KNOWN_VARIANTS = ("act_first", "truncation", "ties", "eps_schedule")


# ---- target expressions, typed by what they contain -----------------------------------------
def _expr_type(tree) -> tuple[bool, bool]:
    """(has a g-term, has a Q(s',a') term): the two facts the TD code reads after a tree."""
    return expr_has_gamma(tree), not PC.codes_order(tree, True)


def _type_name(t: tuple[bool, bool]) -> str:
    return "Expr[" + ("g" if t[0] else "") + ("n" if t[1] else "") + "]" if any(t) else "Expr[]"


def _expr_types() -> dict[tuple[bool, bool], object]:
    """Every expression type, with a representative tree. Types of a binary node are the union
    of its children's (both facts say "some leaf below is ..."), so the types are the closure of
    the leaves' types under union."""
    reps: dict[tuple[bool, bool], object] = {}
    for name in PC.LEAF_TAG:
        reps.setdefault(_expr_type(Leaf(name)), Leaf(name))
    reps.setdefault(_expr_type(Const(Fraction(0))), Const(Fraction(0)))
    changed = True
    while changed:
        changed = False
        for ta, ra in list(reps.items()):
            for tb, rb in list(reps.items()):
                t = (ta[0] or tb[0], ta[1] or tb[1])
                if t not in reps:
                    reps[t] = Add(ra, rb)
                    changed = True
    for t, r in reps.items():
        if _expr_type(r) != t:
            raise GrammarGraphError(f"expression type {t} is not the union of its parts' types")
    return reps


def _expressions(b: GraphBuilder) -> dict[tuple[bool, bool], str]:
    types = _expr_types()
    names = {t: b.nonterminal(_type_name(t), "Expr") for t in types}
    for name, tag in PC.LEAF_TAG.items():
        b.production(names[_expr_type(Leaf(name))], name, len(tag))
    b.production(names[_expr_type(Const(Fraction(0)))], "Const", len(PC.CONST_TAG), [b.signed_rational()])
    for op, tag in (("Add", PC.ADD_TAG), ("Sub", PC.SUB_TAG)):
        for ta in types:
            for tb in types:
                t = (ta[0] or tb[0], ta[1] or tb[1])
                b.production(names[t], f"{op}({_type_name(ta)},{_type_name(tb)})", len(tag), [names[ta], names[tb]])
    return names


# ---- action rules ---------------------------------------------------------------------------
def _explore_parameter(kind: str) -> str | None:
    """Which code an action rule's parameter uses, read off the rule's own validation and
    ``explore_bits`` (no parameter, a unit rational or a power of two)."""
    try:
        Explore(kind)
        return None
    except ValueError:
        pass
    tag = len(PC.EXPLORE_TAG[kind])
    for code, samples, bits in (("UnitRational", (Fraction(1, 3), Fraction(2, 7)), C.unit_rational_bits),
                                ("PowerOfTwo", (Fraction(2), Fraction(1, 8)), C.power_of_two_bits)):
        try:
            ok = all(PC.explore_bits(Explore(kind, v)) == tag + bits(v) for v in samples)
        except ValueError:
            continue
        if ok:
            return code
    raise GrammarGraphError(f"action rule {kind!r}: its parameter's code is neither a unit rational nor a power of two")


def _schedule_length(eps0: Fraction, per: str, shape: str, rate: Fraction, floor: Fraction) -> int:
    """The length of a schedule word as the graph builds it (checked against the code's own)."""
    return (1 + (1 if eps0 == 1 else 1 + C.unit_rational_bits(eps0)) + 1 + len(PC.SHAPE_TAG[shape])
            + C.elias_gamma_bits(int(1 / rate) - 1) + (1 if floor == 0 else 1 + C.elias_gamma_bits(int(1 / floor) - 1)))


def _epsilon_schedule(b: GraphBuilder) -> str:
    """The epsilon word with the ``eps_schedule`` variant: '0' + a constant epsilon | '1' + a
    schedule: start ('0' = 1 | '1' + epsilon), per (episode | step), shape (``SHAPE_TAG``), rate
    1/n and floor ('0' = 0 | '1' + 1/n). Every word is a program."""
    if "EpsilonWord" in b.g:
        return "EpsilonWord"
    samples = [(Fraction(1), "episode", shape, Fraction(1, 2), Fraction(0)) for shape in PC.SHAPE_TAG]
    samples += [(Fraction(1, 3), "step", shape, Fraction(1, 7), Fraction(1, 20)) for shape in PC.SHAPE_TAG]
    for eps0, per, shape, rate, floor in samples:
        word = PC.schedule_encode(eps0, Schedule(per, shape, rate, floor))
        if len(word) != _schedule_length(eps0, per, shape, rate, floor):
            raise GrammarGraphError("the epsilon-schedule code is not the one this graph reads")
    W = b.nonterminal("EpsilonWord")
    b.production(W, "constant", 1, [b.unit_rational()])
    start, shape, floor = b.nonterminal("ScheduleStart"), b.nonterminal("ScheduleShape"), b.nonterminal("ScheduleFloor")
    b.production(start, "1", 1)
    b.production(start, "epsilon", 1, [b.unit_rational()])
    for name, tag in PC.SHAPE_TAG.items():
        b.production(shape, name, len(tag))
    b.production(floor, "0", 1)
    b.production(floor, "1/n", 1, [b.reciprocal()])
    b.production(W, "schedule", 1, [start, b.bit(), shape, b.reciprocal(), floor])
    return W


def _explore(b: GraphBuilder, grammar) -> str:
    """Action rules. With the ``ties`` variant some rules carry a tie word, with ``eps_schedule``
    some rules' parameter is an epsilon word: which ones is read off the code itself
    (``explore_bits`` with and without each variant on a sample of the rule)."""
    E = b.nonterminal("Explore")
    makers = {"UnitRational": b.unit_rational, "PowerOfTwo": b.power_of_two}
    samples = {None: None, "UnitRational": Fraction(1, 3), "PowerOfTwo": Fraction(2)}
    ties, schedules = getattr(grammar, "ties", False), getattr(grammar, "schedules", False)
    for kind, tag in PC.EXPLORE_TAG.items():
        par = _explore_parameter(kind)
        e = Explore(kind, samples[par])
        plain = PC.explore_bits(e)
        tie_bits = PC.explore_bits(e, ties=True) - plain if ties else 0
        parts = [] if par is None else [makers[par]()]
        if schedules and PC.explore_bits(e, schedules=True) != plain:
            if par != "UnitRational" or PC.explore_bits(e, schedules=True) != plain + 1:
                raise GrammarGraphError(f"action rule {kind!r}: an epsilon word that is not '0' + its constant")
            parts = [_epsilon_schedule(b)]
        if tie_bits not in (0, 1):
            raise GrammarGraphError(f"action rule {kind!r}: a tie word of {tie_bits} bits")
        if tie_bits:
            parts.append(b.bit())
        b.production(E, kind, len(tag), parts)
    return E


# ---- program kinds --------------------------------------------------------------------------
def _td(b: GraphBuilder, grammar) -> list[str]:
    exprs = _expressions(b)
    alpha = b.nonterminal("StepSize")
    b.production(alpha, "1/n", 1)
    b.production(alpha, "constant", 1, [b.unit_rational()])
    target = b.nonterminal("TargetBlock")
    for t, rep in _expr_types().items():
        parts = [exprs[t]]
        if PC.codes_order(rep, grammar.orders):
            parts.append(b.bit())
        if PC.codes_truncation(rep, grammar.truncations):
            parts.append(b.bit())
        if expr_has_gamma(rep):
            parts.append(b.unit_rational())
        b.production(target, _type_name(t), 0, parts)
    return [b.signed_rational(), alpha, target, _explore(b, grammar)]


def grammar_graph(grammar, max_bits: float) -> nx.DiGraph:
    """The typed graph of ``grammar``'s programs; families indexed by an unbounded integer (a
    cyclic period, a reactive exception rate, a stochastic resolution, a denominator) are
    expanded as far as ``max_bits`` reaches. Root: ``"Program"``."""
    unknown = [v for v in getattr(grammar, "variants", ()) if v not in KNOWN_VARIANTS]
    if unknown:
        raise GrammarGraphError(f"grammar variant(s) {unknown} have no productions in the grammar graph")
    b = GraphBuilder(max_bits)
    root = b.nonterminal("Program")
    A, S = grammar.n_actions, grammar.n_states
    for kind in grammar.kinds():
        if kind not in PC.KIND_TAG:
            raise GrammarGraphError(f"program kind {kind!r} has no code word in the grammar's tag table")
        tag = len(PC.KIND_TAG[kind])
        if kind == "TD":
            b.production(root, kind, tag, _td(b, grammar))
        elif kind == "UCB1":
            b.production(root, kind, tag, [b.positive_rational()])
        elif kind == "Thompson":
            b.production(root, kind, tag, [b.gamma(), b.gamma()])
        elif kind == "Constant":
            b.production(root, kind, tag, [b.uniform("Action", A)])
        elif kind == "Stochastic":
            node = b.nonterminal("Stochastic")
            b.production(root, kind, tag, [node])
            m = 2
            while tag + C.elias_gamma_bits(m - 1) <= max_bits:
                n = math.comb(m + A - 1, A - 1)
                b.production(node, f"m={m}", C.elias_gamma_bits(m - 1), [b.uniform(f"Composition[m={m}]", n)])
                m += 1
        elif kind == "Cyclic":
            node = b.nonterminal("Cyclic")
            b.production(root, kind, tag, [node])
            act = b.uniform("Action", A)
            for clock in grammar.clocks():
                L = 1
                while grammar.cyclic_prefix_bits(L) + L * grammar.action_bits <= max_bits + 1e-9:
                    b.production(node, f"{clock},L={L}", grammar.cyclic_prefix_bits(L) - tag, [act] * L)
                    L += 1
        elif kind == "Reactive":
            node = b.nonterminal("Reactive")
            b.production(root, kind, tag, [node])
            act = b.uniform("Action", A)
            k = 1
            # a longer exception-rate word can still fit: a rarer exception makes every default
            # entry cheaper, so scan every k whose prefix fits
            while grammar.reactive_prefix_bits(k) <= max_bits + 1e-9:
                if grammar.reactive_prefix_bits(k) + grammar.reactive_exception_bits(k, 0) > max_bits + 1e-9:
                    k += 1
                    continue
                cell = b.nonterminal(f"TableEntry[k={k}]", "TableEntry")
                default = grammar.reactive_exception_bits(k, 0) / S
                exception = grammar.reactive_exception_bits(k, 1) - grammar.reactive_exception_bits(k, 0) + default
                b.production(cell, "default", default)
                b.production(cell, "exception", exception - math.log2(A - 1), [b.uniform("OtherAction", A - 1)])
                b.production(node, f"k={k}", grammar.reactive_prefix_bits(k) - grammar.action_bits - tag,
                             [act] + [cell] * S)
                k += 1
        else:
            raise GrammarGraphError(f"program kind {kind!r} has no production in the grammar graph")
    return b.g


def grammar_counts(grammar, max_bits: float) -> dict[str, list[int]]:
    """Programs of each kind of ``grammar`` by ``ceil(bits)`` up to ``max_bits`` -- what
    ``enumerate_programs(grammar, max_bits).counts`` reports, computed without enumerating."""
    return {k: counts_by_ceil_bits(c, max_bits) for k, c in kind_counts(grammar_graph(grammar, max_bits), max_bits).items()}


def _expression_parts() -> tuple[sp.Expr, sp.Expr]:
    leaves = sum(x ** len(t) for t in PC.LEAF_TAG.values()) + x ** len(PC.CONST_TAG) * signed_rational_gf()
    operators = x ** len(PC.ADD_TAG) + x ** len(PC.SUB_TAG)
    return leaves, operators


def expression_gf() -> sp.Expr:
    """The TD target expression trees (all types together) under this grammar's tags: leaves and
    constants ``a(x)``, the binary operators' tags ``b(x)``, ``E = a + b E^2``."""
    return tree_gf(*_expression_parts())


def expression_growth_rate() -> float:
    """Target trees per extra bit of length (``theory.grammar_graph.tree_growth_rate``)."""
    return tree_growth_rate(*_expression_parts())


__all__ = ["KNOWN_VARIANTS", "GrammarGraphError", "grammar_graph", "grammar_counts", "expression_gf",
           "expression_growth_rate"]
