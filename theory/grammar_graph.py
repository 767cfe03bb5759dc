"""The program grammar as a typed graph, and the number of programs of each code length over it.

``grammar_graph(grammar, max_bits)`` turns a ``learners.solomonoff.Grammar`` into a
``networkx.DiGraph`` whose nodes are

* ``nonterminal`` -- a typed syntactic category (``Program``, ``TD``, ``Expr[g]``,
  ``SignedRational`` ...); its out-edges go to its alternatives;
* ``production`` -- one alternative: its own code word (``bits``, the tag and any fixed-length
  field) followed by its children in order (``children``; repeated children appear once as an
  edge whose ``times`` says how often);
* ``choice`` -- a uniform (or truncated-binary) choice among n symbols, given by the lengths of
  its n code words (an action costs log2 A bits, a coprime numerator a truncated-binary word).

It is read from the grammar's own tables -- the kind, leaf, operator and action-rule tags of
``prefix_code``, the grammar's kinds, clocks and variants, the lengths its ``Grammar`` methods give
the cyclic and reactive prefixes -- so a production added there appears here; a part whose code
this module cannot read (a new action rule's parameter, a new program kind) is a
``GrammarGraphError``, never a silent miscount. Expression trees are typed by what they contain
(a bootstrap ``g``-term, a ``Q(s',a')`` term), because the TD code adds an order bit, a truncation
bit or a discount after the tree depending on exactly that.

``program_counts`` is the dynamic programme: the count vector of a production is its tag shifted
over the convolution of its children's, a nonterminal's the sum over its productions; the
recursive categories (expressions; Elias gamma, ``G -> 1 | 0 G B``) are solved by iterating to the
fixpoint, one more length settled per round because every production spends at least one bit.
Lengths that are sums of ``log2 n`` choices are not integers; counts are kept by exact length
(rounded to 1e-12) and ``counts_by_ceil_bits`` bins them as the enumerator does.

Closed forms (``sympy``), where the grammar gives one: the generating functions of Elias gamma,
the rational and power-of-two codes and of the target expression trees (a quadratic: the trees
are a simply generated family), their Kraft masses at x = 1/2, and the exponential growth rate of
the number of trees with their length.

This is the one ``theory`` module that reads the learners' grammar: its purpose is to count
exactly what the enumerator enumerates.
"""
from __future__ import annotations

import math
from collections import defaultdict
from fractions import Fraction
from typing import Mapping

import networkx as nx
import sympy as sp

from learners.solomonoff import prefix_code as PC
from learners.solomonoff.syntax import Add, Const, Explore, Leaf, Schedule, expr_has_gamma
from theory import codes as C

#: The grammar variants whose code words the graph reads; a grammar holding another is refused.
KNOWN_VARIANTS = ("act_first", "truncation", "ties", "eps_schedule")
_ROUND = 12  # decimals kept of a length made of log2 terms (the enumerator bins with a 1e-9 tolerance)

Counts = dict[float, int]


class GrammarGraphError(ValueError):
    """A part of the grammar whose code this module cannot read."""


# =============================================================================================
# Building the graph
# =============================================================================================
class _Builder:
    def __init__(self, max_bits: float):
        self.g = nx.DiGraph()
        self.max_bits = float(max_bits)

    def nonterminal(self, name: str, type_: str = "") -> str:
        if name not in self.g:
            self.g.add_node(name, kind="nonterminal", type=type_ or name)
        return name

    def production(self, parent: str, label: str, bits: float, children: list[str] = ()) -> str:
        name = f"{parent}:{label}"
        if name in self.g:
            raise GrammarGraphError(f"production {name!r} defined twice")
        self.g.add_node(name, kind="production", label=label, bits=float(bits), children=tuple(children))
        self.g.add_edge(parent, name, role="alternative")
        for c in set(children):
            self.g.add_edge(name, c, role="part", times=list(children).count(c))
        return name

    def choice(self, name: str, lengths) -> str:
        """A terminal choice among symbols with code words of the given lengths (kept as a
        length -> count map: a denominator's coprimes may number thousands)."""
        if name not in self.g:
            counts: Counts = defaultdict(int)
            for x in lengths:
                counts[_key(float(x))] += 1
            self.g.add_node(name, kind="choice", lengths=dict(counts))
        return name


def _uniform(b: _Builder, name: str, n: int) -> str:
    """A uniform choice among n symbols, log2 n bits each (arithmetic-coded)."""
    if name not in b.g:
        b.g.add_node(name, kind="choice", lengths={_key(math.log2(n)): n})
    return name


def _gamma(b: _Builder) -> str:
    """Elias gamma as a context-free grammar: ``G -> '1' | '0' G B``, ``B -> '0' | '1'``
    (0^k 1 x_1..x_k: 2^k words of 2k + 1 bits)."""
    if "EliasGamma" not in b.g:
        G = b.nonterminal("EliasGamma")
        bit = b.choice("Bit", [1, 1])
        b.production(G, "1", 1)
        b.production(G, "0 G bit", 1, [G, bit])
    return "EliasGamma"


def _positive_rational(b: _Builder) -> str:
    """Denominator q, then the rank of the numerator among the integers coprime to q (both gamma)."""
    if "PositiveRational" not in b.g:
        P = b.nonterminal("PositiveRational")
        g = _gamma(b)
        b.production(P, "q rank", 0, [g, g])
    return "PositiveRational"


def _signed_rational(b: _Builder) -> str:
    """'0' zero; '1' sign then a positive rational."""
    if "SignedRational" not in b.g:
        S = b.nonterminal("SignedRational")
        b.production(S, "zero", C.signed_rational_bits(0))
        pos = _positive_rational(b)
        sign_bits = C.signed_rational_bits(1) - C.positive_rational_bits(1)
        b.production(S, "+", sign_bits, [pos])
        b.production(S, "-", sign_bits, [pos])
    return "SignedRational"


def _power_of_two(b: _Builder) -> str:
    """2^k with k a signed integer: '0' k = 0; '1' sign then |k| in gamma."""
    if "PowerOfTwo" not in b.g:
        T = b.nonterminal("PowerOfTwo")
        b.production(T, "1", C.power_of_two_bits(1))
        sign_bits = C.power_of_two_bits(2) - C.elias_gamma_bits(1)
        g = _gamma(b)
        b.production(T, "2^k", sign_bits, [g])
        b.production(T, "2^-k", sign_bits, [g])
    return "PowerOfTwo"


def _unit_rational(b: _Builder) -> str:
    """p/q in (0, 1): q - 1 in gamma, then p among the phi(q) coprimes in truncated binary. The
    numerator's choice depends on q, so each denominator is its own production (as many as fit)."""
    if "UnitRational" not in b.g:
        U = b.nonterminal("UnitRational")
        q = 2
        while C.elias_gamma_bits(q - 1) <= b.max_bits:
            phi = _euler_phi(q)
            if C.elias_gamma_bits(q - 1) + C.truncated_binary_bits(0, phi) > b.max_bits:
                q += 1  # not even the shortest numerator fits
                continue
            num = b.choice(f"Numerator[q={q}]", C.truncated_binary_lengths(phi))
            b.production(U, f"q={q}", C.elias_gamma_bits(q - 1), [num])
            q += 1
    return "UnitRational"


def _euler_phi(q: int) -> int:
    out, n, p = q, q, 2
    while p * p <= n:
        if n % p == 0:
            while n % p == 0:
                n //= p
            out -= out // p
        p += 1
    return out - out // n if n > 1 else out


def _action(b: _Builder, n_actions: int) -> str:
    return _uniform(b, "Action", n_actions)


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


def _expressions(b: _Builder) -> dict[tuple[bool, bool], str]:
    types = _expr_types()
    names = {t: b.nonterminal(_type_name(t), "Expr") for t in types}
    for name, tag in PC.LEAF_TAG.items():
        b.production(names[_expr_type(Leaf(name))], name, len(tag))
    b.production(names[_expr_type(Const(Fraction(0)))], "Const", len(PC.CONST_TAG), [_signed_rational(b)])
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


def _reciprocal(b: _Builder) -> str:
    """1/n, n >= 2, as the gamma word of n - 1: every gamma word."""
    return _gamma(b)


def _schedule_length(eps0: Fraction, per: str, shape: str, rate: Fraction, floor: Fraction) -> int:
    """The length of a schedule word as the graph builds it (checked against the code's own)."""
    return (1 + (1 if eps0 == 1 else 1 + C.unit_rational_bits(eps0)) + 1 + len(PC.SHAPE_TAG[shape])
            + C.elias_gamma_bits(int(1 / rate) - 1) + (1 if floor == 0 else 1 + C.elias_gamma_bits(int(1 / floor) - 1)))


def _epsilon_schedule(b: _Builder) -> str:
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
            raise GrammarGraphError("the epsilon-schedule code is not the one theory.grammar_graph reads")
    W = b.nonterminal("EpsilonWord")
    b.production(W, "constant", 1, [_unit_rational(b)])
    start, shape, floor = b.nonterminal("ScheduleStart"), b.nonterminal("ScheduleShape"), b.nonterminal("ScheduleFloor")
    b.production(start, "1", 1)
    b.production(start, "epsilon", 1, [_unit_rational(b)])
    for name, tag in PC.SHAPE_TAG.items():
        b.production(shape, name, len(tag))
    b.production(floor, "0", 1)
    b.production(floor, "1/n", 1, [_reciprocal(b)])
    b.production(W, "schedule", 1, [start, b.choice("Bit", [1, 1]), shape, _reciprocal(b), floor])
    return W


def _explore(b: _Builder, grammar) -> str:
    """Action rules. With the ``ties`` variant some rules carry a tie word, with ``eps_schedule``
    some rules' parameter is an epsilon word: which ones is read off the code itself
    (``explore_bits`` with and without each variant on a sample of the rule)."""
    E = b.nonterminal("Explore")
    makers = {"UnitRational": _unit_rational, "PowerOfTwo": _power_of_two}
    samples = {None: None, "UnitRational": Fraction(1, 3), "PowerOfTwo": Fraction(2)}
    ties, schedules = getattr(grammar, "ties", False), getattr(grammar, "schedules", False)
    for kind, tag in PC.EXPLORE_TAG.items():
        par = _explore_parameter(kind)
        e = Explore(kind, samples[par])
        plain = PC.explore_bits(e)
        tie_bits = PC.explore_bits(e, ties=True) - plain if ties else 0
        parts = [] if par is None else [makers[par](b)]
        if schedules and PC.explore_bits(e, schedules=True) != plain:
            if par != "UnitRational" or PC.explore_bits(e, schedules=True) != plain + 1:
                raise GrammarGraphError(f"action rule {kind!r}: an epsilon word that is not '0' + its constant")
            parts = [_epsilon_schedule(b)]
        if tie_bits not in (0, 1):
            raise GrammarGraphError(f"action rule {kind!r}: a tie word of {tie_bits} bits")
        if tie_bits:
            parts.append(b.choice("Bit", [1, 1]))
        b.production(E, kind, len(tag), parts)
    return E


# ---- program kinds --------------------------------------------------------------------------
def _td(b: _Builder, grammar) -> list[str]:
    exprs = _expressions(b)
    alpha = b.nonterminal("StepSize")
    b.production(alpha, "1/n", 1)
    b.production(alpha, "constant", 1, [_unit_rational(b)])
    target = b.nonterminal("TargetBlock")
    bit = b.choice("Bit", [1, 1])
    for t, rep in _expr_types().items():
        parts = [exprs[t]]
        if PC.codes_order(rep, grammar.orders):
            parts.append(bit)
        if PC.codes_truncation(rep, grammar.truncations):
            parts.append(bit)
        if expr_has_gamma(rep):
            parts.append(_unit_rational(b))
        b.production(target, _type_name(t), 0, parts)
    return [_signed_rational(b), alpha, target, _explore(b, grammar)]


def grammar_graph(grammar, max_bits: float) -> nx.DiGraph:
    """The typed graph of ``grammar``'s programs; families indexed by an unbounded integer (a
    cyclic period, a reactive exception rate, a stochastic resolution, a denominator) are
    expanded as far as ``max_bits`` reaches. Root: ``"Program"``."""
    unknown = [v for v in getattr(grammar, "variants", ()) if v not in KNOWN_VARIANTS]
    if unknown:
        raise GrammarGraphError(f"grammar variant(s) {unknown} have no productions in theory.grammar_graph")
    b = _Builder(max_bits)
    root = b.nonterminal("Program")
    A, S = grammar.n_actions, grammar.n_states
    for kind in grammar.kinds():
        if kind not in PC.KIND_TAG:
            raise GrammarGraphError(f"program kind {kind!r} has no code word in the grammar's tag table")
        tag = len(PC.KIND_TAG[kind])
        if kind == "TD":
            b.production(root, kind, tag, _td(b, grammar))
        elif kind == "UCB1":
            b.production(root, kind, tag, [_positive_rational(b)])
        elif kind == "Thompson":
            b.production(root, kind, tag, [_gamma(b), _gamma(b)])
        elif kind == "Constant":
            b.production(root, kind, tag, [_action(b, A)])
        elif kind == "Stochastic":
            node = b.nonterminal("Stochastic")
            b.production(root, kind, tag, [node])
            m = 2
            while tag + C.elias_gamma_bits(m - 1) <= max_bits:
                n = math.comb(m + A - 1, A - 1)
                b.production(node, f"m={m}", C.elias_gamma_bits(m - 1), [_uniform(b, f"Composition[m={m}]", n)])
                m += 1
        elif kind == "Cyclic":
            node = b.nonterminal("Cyclic")
            b.production(root, kind, tag, [node])
            act = _action(b, A)
            for clock in grammar.clocks():
                L = 1
                while grammar.cyclic_prefix_bits(L) + L * grammar.action_bits <= max_bits + 1e-9:
                    b.production(node, f"{clock},L={L}", grammar.cyclic_prefix_bits(L) - tag, [act] * L)
                    L += 1
        elif kind == "Reactive":
            node = b.nonterminal("Reactive")
            b.production(root, kind, tag, [node])
            act = _action(b, A)
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
                b.production(cell, "exception", exception - math.log2(A - 1),
                             [_uniform(b, "OtherAction", A - 1)])
                b.production(node, f"k={k}", grammar.reactive_prefix_bits(k) - grammar.action_bits - tag,
                             [act] + [cell] * S)
                k += 1
        else:
            raise GrammarGraphError(f"program kind {kind!r} has no production in theory.grammar_graph")
    return b.g


# =============================================================================================
# Counting by dynamic programming
# =============================================================================================
def _key(x: float) -> float:
    return round(x, _ROUND)


def _convolve(a: Counts, b: Counts, max_bits: float) -> Counts:
    out: Counts = defaultdict(int)
    for la, ca in a.items():
        for lb, cb in b.items():
            s = _key(la + lb)
            if s <= max_bits + 1e-9:
                out[s] += ca * cb
    return dict(out)


def _production_counts(g: nx.DiGraph, p: str, val: Mapping[str, Counts], max_bits: float) -> Counts:
    d = g.nodes[p]
    acc: Counts = {_key(d["bits"]): 1} if d["bits"] <= max_bits + 1e-9 else {}
    for c in d["children"]:
        if not acc:
            break
        acc = _convolve(acc, val.get(c, {}), max_bits)
    return acc


def _node_counts(g: nx.DiGraph, n: str, val: Mapping[str, Counts], max_bits: float) -> Counts:
    d = g.nodes[n]
    if d["kind"] == "choice":
        return {l: c for l, c in d["lengths"].items() if l <= max_bits + 1e-9}
    if d["kind"] == "production":
        return _production_counts(g, n, val, max_bits)
    out = defaultdict(int)
    for p in g.successors(n):
        for l, c in val.get(p, {}).items():
            out[l] += c
    return dict(out)


def program_counts(graph: nx.DiGraph, max_bits: float) -> dict[str, Counts]:
    """Number of code words of every node by exact length (<= ``max_bits``): ``{node: {bits: n}}``.

    Strongly connected components are solved in reverse topological order; a recursive one is
    iterated from zero counts to its fixpoint (every production spends >= 1 bit, so each round
    settles at least one more length and the iteration ends within ``max_bits`` + 1 rounds)."""
    val: dict[str, Counts] = {}
    cond = nx.condensation(graph)
    for comp in reversed(list(nx.topological_sort(cond))):
        members = cond.nodes[comp]["members"]
        cyclic = len(members) > 1 or any(graph.has_edge(m, m) for m in members)
        if not cyclic:
            (n,) = members
            val[n] = _node_counts(graph, n, val, max_bits)
            continue
        order = sorted(members)
        for n in members:
            val[n] = {}
        for _ in range(int(math.ceil(max_bits)) + 2):
            new = {n: _node_counts(graph, n, val, max_bits) for n in order}
            if new == {n: val[n] for n in order}:
                break
            val.update(new)
        else:
            raise GrammarGraphError("a recursive category did not settle (a production of zero bits in a cycle?)")
    return val


def kind_counts(graph: nx.DiGraph, max_bits: float) -> dict[str, Counts]:
    """Code words of each program kind by exact length."""
    val = program_counts(graph, max_bits)
    return {graph.nodes[p]["label"]: val[p] for p in graph.successors("Program") if val[p]}


def counts_by_ceil_bits(counts: Counts, max_bits: float) -> list[int]:
    """A length -> count map binned by ``ceil(bits)`` (index = bits), the enumerator's histogram."""
    top = int(math.ceil(max_bits - 1e-9))
    out = [0] * (top + 1)
    for l, c in counts.items():
        out[int(math.ceil(l - 1e-9))] += c
    return out


def grammar_counts(grammar, max_bits: float) -> dict[str, list[int]]:
    """Programs of each kind of ``grammar`` by ``ceil(bits)`` up to ``max_bits`` -- what
    ``enumerate_programs(grammar, max_bits).counts`` reports, computed without enumerating."""
    return {k: counts_by_ceil_bits(c, max_bits) for k, c in kind_counts(grammar_graph(grammar, max_bits), max_bits).items()}


def log2_kraft_mass(counts: Counts) -> float:
    """log2 of the summed prior weight ``sum n 2^-bits`` (log2 of the mixture's normaliser when
    ``counts`` holds every program it enumerated)."""
    m = min(counts)
    return -m + math.log2(sum(c * 2.0 ** (m - l) for l, c in counts.items()))


def total_counts(per_kind: Mapping[str, Counts]) -> Counts:
    out: Counts = defaultdict(int)
    for c in per_kind.values():
        for l, n in c.items():
            out[l] += n
    return dict(out)


def integer_vector(counts: Counts, max_bits: int) -> list[int]:
    """An integer-length count map as a list (index = bits); refuses non-integer lengths."""
    out = [0] * (int(max_bits) + 1)
    for l, c in counts.items():
        if abs(l - round(l)) > 1e-9:
            raise ValueError(f"length {l} is not an integer")
        out[int(round(l))] += c
    return out


# =============================================================================================
# Closed forms
# =============================================================================================
x = sp.Symbol("x")


def gamma_gf() -> sp.Expr:
    """Elias gamma: ``G = x + 2 x^2 G``, so ``G = x / (1 - 2 x^2)`` (2^k words of 2k + 1 bits)."""
    return x / (1 - 2 * x ** 2)


def positive_rational_gf() -> sp.Expr:
    """Denominator and numerator rank, both gamma: ``G^2`` (every pair is a rational, once)."""
    return gamma_gf() ** 2


def signed_rational_gf() -> sp.Expr:
    return x ** C.signed_rational_bits(0) + 2 * x ** (C.signed_rational_bits(1) - C.positive_rational_bits(1)) * positive_rational_gf()


def power_of_two_gf() -> sp.Expr:
    return x ** C.power_of_two_bits(1) + 2 * x ** (C.power_of_two_bits(2) - C.elias_gamma_bits(1)) * gamma_gf()


def expression_gf() -> sp.Expr:
    """Target expression trees (all types together): ``E = a(x) + b(x) E^2`` with ``a`` the leaves
    and constants and ``b`` the binary operators' tags, so ``E = (1 - sqrt(1 - 4ab)) / (2b)``
    (the root with ``E(0) = 0``)."""
    a = sum(x ** len(t) for t in PC.LEAF_TAG.values()) + x ** len(PC.CONST_TAG) * signed_rational_gf()
    bb = x ** len(PC.ADD_TAG) + x ** len(PC.SUB_TAG)
    return (1 - sp.sqrt(1 - 4 * a * bb)) / (2 * bb)


def series_counts(gf: sp.Expr, max_bits: int) -> list[int]:
    """Coefficients of ``gf`` up to ``x^max_bits``: the number of code words of each length."""
    s = sp.series(gf, x, 0, int(max_bits) + 1).removeO()
    return [int(s.coeff(x, n)) for n in range(int(max_bits) + 1)]


def kraft_mass(gf: sp.Expr) -> sp.Expr:
    """Prior mass of the whole (unbounded) family: its generating function at x = 1/2 (1 for a
    complete prefix code)."""
    return sp.nsimplify(sp.simplify(gf.subs(x, sp.Rational(1, 2))))


def expression_growth_rate() -> float:
    """Exponential growth of the number of target trees with their length: count(n) ~ c rho^-n
    n^(-3/2), rho the smallest positive root of ``1 - 4 a(x) b(x)`` (the square-root singularity);
    returns 1 / rho (trees per extra bit)."""
    a = sum(x ** len(t) for t in PC.LEAF_TAG.values()) + x ** len(PC.CONST_TAG) * signed_rational_gf()
    bb = x ** len(PC.ADD_TAG) + x ** len(PC.SUB_TAG)
    disc = sp.together(1 - 4 * a * bb)
    num = sp.Poly(sp.numer(disc), x)
    roots = [complex(r) for r in num.nroots()]
    pos = sorted(r.real for r in roots if abs(r.imag) < 1e-12 and 0 < r.real < 1 / math.sqrt(2))
    return 1.0 / pos[0]


__all__ = [
    "KNOWN_VARIANTS", "GrammarGraphError", "grammar_graph", "program_counts", "kind_counts", "counts_by_ceil_bits", "grammar_counts",
    "log2_kraft_mass", "total_counts", "integer_vector", "x", "gamma_gf", "positive_rational_gf",
    "signed_rational_gf", "power_of_two_gf", "expression_gf", "series_counts", "kraft_mass",
    "expression_growth_rate",
]
