"""Counting the programs of a grammar given as a typed graph: dynamic programming and closed forms.

A grammar graph is a ``networkx.DiGraph`` whose nodes are

* ``nonterminal`` -- a typed syntactic category (``Program``, ``TD``, ``Expr[g]``,
  ``SignedRational`` ...); its out-edges go to its alternatives;
* ``production`` -- one alternative: its own code word (``bits``, the tag and any fixed-length
  field) followed by its children in order (``children``; repeated children appear once as an
  edge whose ``times`` says how often);
* ``choice`` -- a uniform (or truncated-binary) choice among n symbols, given by the lengths of
  its n code words (an action costs log2 A bits, a coprime numerator a truncated-binary word).

``GraphBuilder`` builds such graphs, with the universal codes of ``theory.codes`` as ready-made
categories (Elias gamma, the rationals, powers of two). The mixture's own grammar is turned into
one by ``learners.solomonoff.grammar_graph``, which reads the learners' code tables; this module
reads nothing of the project but ``theory.codes``, so the counting is pure mathematics.

``program_counts`` is the dynamic programme: the count vector of a production is its tag shifted
over the convolution of its children's, a nonterminal's the sum over its productions; the
recursive categories (expressions; Elias gamma, ``G -> 1 | 0 G B``) are solved by iterating to the
fixpoint, one more length settled per round because every production spends at least one bit.
Lengths that are sums of ``log2 n`` choices are not integers; counts are kept by exact length
(rounded to 1e-12) and ``counts_by_ceil_bits`` bins them as the enumerator does.

Closed forms (``sympy``): the generating functions of Elias gamma, the rational and power-of-two
codes and of simply generated trees (``E = a + b E^2``, a quadratic), their Kraft masses at
x = 1/2, and the exponential growth rate of the number of trees with their length.
"""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Iterable, Mapping

import networkx as nx
import sympy as sp

from theory import codes as C

_ROUND = 12  # decimals kept of a length made of log2 terms (the enumerator bins with a 1e-9 tolerance)

Counts = dict[float, int]


class GrammarGraphError(ValueError):
    """A part of a grammar whose code cannot be read into, or counted over, a graph."""


def length_key(x: float) -> float:
    """A code length as the graph keys it (rounded to 1e-12)."""
    return round(x, _ROUND)


# =============================================================================================
# Building a graph
# =============================================================================================
class GraphBuilder:
    """Adds typed nodes to a grammar graph; ``max_bits`` bounds the families it expands."""

    def __init__(self, max_bits: float):
        self.g = nx.DiGraph()
        self.max_bits = float(max_bits)

    def nonterminal(self, name: str, type_: str = "") -> str:
        if name not in self.g:
            self.g.add_node(name, kind="nonterminal", type=type_ or name)
        return name

    def production(self, parent: str, label: str, bits: float, children: Iterable[str] = ()) -> str:
        name = f"{parent}:{label}"
        if name in self.g:
            raise GrammarGraphError(f"production {name!r} defined twice")
        children = list(children)
        self.g.add_node(name, kind="production", label=label, bits=float(bits), children=tuple(children))
        self.g.add_edge(parent, name, role="alternative")
        for c in set(children):
            self.g.add_edge(name, c, role="part", times=children.count(c))
        return name

    def choice(self, name: str, lengths) -> str:
        """A terminal choice among symbols with code words of the given lengths (kept as a
        length -> count map: a denominator's coprimes may number thousands)."""
        if name not in self.g:
            counts: Counts = defaultdict(int)
            for x in lengths:
                counts[length_key(float(x))] += 1
            self.g.add_node(name, kind="choice", lengths=dict(counts))
        return name

    def uniform(self, name: str, n: int) -> str:
        """A uniform choice among n symbols, log2 n bits each (arithmetic-coded)."""
        if name not in self.g:
            self.g.add_node(name, kind="choice", lengths={length_key(math.log2(n)): n})
        return name

    def bit(self) -> str:
        return self.choice("Bit", [1, 1])

    # ---- the universal codes of theory.codes as categories -----------------------------------
    def gamma(self) -> str:
        """Elias gamma as a context-free grammar: ``G -> '1' | '0' G B``, ``B -> '0' | '1'``
        (0^k 1 x_1..x_k: 2^k words of 2k + 1 bits)."""
        if "EliasGamma" not in self.g:
            G = self.nonterminal("EliasGamma")
            self.production(G, "1", 1)
            self.production(G, "0 G bit", 1, [G, self.bit()])
        return "EliasGamma"

    def positive_rational(self) -> str:
        """Denominator q, then the rank of the numerator among the integers coprime to q (both gamma)."""
        if "PositiveRational" not in self.g:
            P = self.nonterminal("PositiveRational")
            g = self.gamma()
            self.production(P, "q rank", 0, [g, g])
        return "PositiveRational"

    def signed_rational(self) -> str:
        """'0' zero; '1' sign then a positive rational."""
        if "SignedRational" not in self.g:
            S = self.nonterminal("SignedRational")
            self.production(S, "zero", C.signed_rational_bits(0))
            pos = self.positive_rational()
            sign_bits = C.signed_rational_bits(1) - C.positive_rational_bits(1)
            self.production(S, "+", sign_bits, [pos])
            self.production(S, "-", sign_bits, [pos])
        return "SignedRational"

    def power_of_two(self) -> str:
        """2^k with k a signed integer: '0' k = 0; '1' sign then |k| in gamma."""
        if "PowerOfTwo" not in self.g:
            T = self.nonterminal("PowerOfTwo")
            self.production(T, "1", C.power_of_two_bits(1))
            sign_bits = C.power_of_two_bits(2) - C.elias_gamma_bits(1)
            g = self.gamma()
            self.production(T, "2^k", sign_bits, [g])
            self.production(T, "2^-k", sign_bits, [g])
        return "PowerOfTwo"

    def unit_rational(self) -> str:
        """p/q in (0, 1): q - 1 in gamma, then p among the phi(q) coprimes in truncated binary. The
        numerator's choice depends on q, so each denominator is its own production (as many as fit)."""
        if "UnitRational" not in self.g:
            U = self.nonterminal("UnitRational")
            q = 2
            while C.elias_gamma_bits(q - 1) <= self.max_bits:
                phi = euler_phi(q)
                if C.elias_gamma_bits(q - 1) + C.truncated_binary_bits(0, phi) <= self.max_bits:
                    num = self.choice(f"Numerator[q={q}]", C.truncated_binary_lengths(phi))
                    self.production(U, f"q={q}", C.elias_gamma_bits(q - 1), [num])
                q += 1
        return "UnitRational"

    def reciprocal(self) -> str:
        """1/n, n >= 2, as the gamma word of n - 1: every gamma word."""
        return self.gamma()


def euler_phi(q: int) -> int:
    out, n, p = q, q, 2
    while p * p <= n:
        if n % p == 0:
            while n % p == 0:
                n //= p
            out -= out // p
        p += 1
    return out - out // n if n > 1 else out


# =============================================================================================
# Counting by dynamic programming
# =============================================================================================
def _convolve(a: Counts, b: Counts, max_bits: float) -> Counts:
    out: Counts = defaultdict(int)
    for la, ca in a.items():
        for lb, cb in b.items():
            s = length_key(la + lb)
            if s <= max_bits + 1e-9:
                out[s] += ca * cb
    return dict(out)


def _production_counts(g: nx.DiGraph, p: str, val: Mapping[str, Counts], max_bits: float) -> Counts:
    d = g.nodes[p]
    acc: Counts = {length_key(d["bits"]): 1} if d["bits"] <= max_bits + 1e-9 else {}
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


def kind_counts(graph: nx.DiGraph, max_bits: float, root: str = "Program") -> dict[str, Counts]:
    """Code words of each alternative of ``root`` (each program kind) by exact length."""
    val = program_counts(graph, max_bits)
    return {graph.nodes[p]["label"]: val[p] for p in graph.successors(root) if val[p]}


def counts_by_ceil_bits(counts: Counts, max_bits: float) -> list[int]:
    """A length -> count map binned by ``ceil(bits)`` (index = bits), the enumerator's histogram."""
    top = int(math.ceil(max_bits - 1e-9))
    out = [0] * (top + 1)
    for l, c in counts.items():
        out[int(math.ceil(l - 1e-9))] += c
    return out


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


def tree_gf(leaves: sp.Expr, operators: sp.Expr) -> sp.Expr:
    """Binary trees with leaf words ``leaves(x)`` and operator tags ``operators(x)``:
    ``E = a + b E^2``, so ``E = (1 - sqrt(1 - 4ab)) / (2b)`` (the root with ``E(0) = 0``)."""
    return (1 - sp.sqrt(1 - 4 * leaves * operators)) / (2 * operators)


def tree_growth_rate(leaves: sp.Expr, operators: sp.Expr) -> float:
    """Exponential growth of the number of such trees with their length: count(n) ~ c rho^-n
    n^(-3/2), rho the smallest positive root of ``1 - 4 a(x) b(x)`` (the square-root
    singularity) below the leaves' own radius 1/sqrt(2); returns 1 / rho (trees per extra bit)."""
    disc = sp.together(1 - 4 * leaves * operators)
    num = sp.Poly(sp.numer(disc), x)
    roots = [complex(r) for r in num.nroots()]
    pos = sorted(r.real for r in roots if abs(r.imag) < 1e-12 and 0 < r.real < 1 / math.sqrt(2))
    if not pos:
        raise GrammarGraphError("the trees' generating function has no square-root singularity below 1/sqrt(2)")
    return 1.0 / pos[0]


def series_counts(gf: sp.Expr, max_bits: int) -> list[int]:
    """Coefficients of ``gf`` up to ``x^max_bits``: the number of code words of each length."""
    s = sp.series(gf, x, 0, int(max_bits) + 1).removeO()
    return [int(s.coeff(x, n)) for n in range(int(max_bits) + 1)]


def kraft_mass(gf: sp.Expr) -> sp.Expr:
    """Prior mass of the whole (unbounded) family: its generating function at x = 1/2 (1 for a
    complete prefix code)."""
    return sp.nsimplify(sp.simplify(gf.subs(x, sp.Rational(1, 2))))


__all__ = [
    "Counts", "GrammarGraphError", "GraphBuilder", "length_key", "euler_phi", "program_counts", "kind_counts",
    "counts_by_ceil_bits", "log2_kraft_mass", "total_counts", "integer_vector", "x", "gamma_gf",
    "positive_rational_gf", "signed_rational_gf", "power_of_two_gf", "tree_gf", "tree_growth_rate",
    "series_counts", "kraft_mass",
]
