"""The grammar as a typed graph: program counts by dynamic programming equal the enumeration, the
closed forms equal the dynamic programme, and the bound built on the counts is the numeric bound."""
from __future__ import annotations

import math

import networkx as nx
import pytest

from learners.solomonoff import Grammar, enumerate_programs
from learners.solomonoff.grammar import VARIANTS
from learners.solomonoff import grammar_graph as LG
from theory import bounds, codes as C, counts as TC, grammar_graph as GG, symbolic as S

GRAMMARS = {
    "bandit5": Grammar(1, 5, bandit=True),
    "bandit2": Grammar(1, 2, bandit=True),
    "one_state_episodic": Grammar(1, 3),
    "darkroom5": Grammar(25, 5),
    "darkroom9": Grammar(81, 5),
    "variants": Grammar(9, 4, variants=("act_first", "truncation")),
    "truncation_binary": Grammar(3, 2, variants=("truncation",)),
    "every_variant": Grammar(9, 4, variants=VARIANTS),   # a variant added to the grammar is counted here too
    "bandit_ties_schedules": Grammar(1, 5, bandit=True, variants=("ties", "eps_schedule")),
    "schedules": Grammar(4, 2, variants=("eps_schedule",)),
    "ties": Grammar(4, 3, variants=("ties",)),
}


@pytest.mark.parametrize("name", sorted(GRAMMARS))
def test_dp_counts_equal_enumeration_at_every_length(name):
    g = GRAMMARS[name]
    for budget in (9, 14, 20):
        dp = LG.grammar_counts(g, budget)
        enum = enumerate_programs(g, budget).counts
        assert set(dp) == set(enum), (budget, set(dp) ^ set(enum))
        for kind in enum:
            assert dp[kind] == enum[kind], (kind, budget)
        assert sum(map(sum, dp.values())) == enumerate_programs(g, budget).n_code_words


def test_graph_is_typed_and_recursive_where_the_grammar_is():
    G = LG.grammar_graph(GRAMMARS["variants"], 16)
    assert isinstance(G, nx.DiGraph)
    kinds = {d["kind"] for _, d in G.nodes(data=True)}
    assert kinds == {"nonterminal", "production", "choice"}
    # every edge from a nonterminal goes to a production; every production's parts are nodes
    for u, v in G.edges:
        if G.nodes[u]["kind"] == "nonterminal":
            assert G.nodes[v]["kind"] == "production"
    assert {G.nodes[p]["label"] for p in G.successors("Program")} == set(GRAMMARS["variants"].kinds())
    # expressions are typed by what they contain, and each type is recursive (a type is reached
    # only from itself and the types it contains: Add(Expr[], Expr[]) is plain, Add(., Expr[g]) is not)
    expr = {n for n, d in G.nodes(data=True) if d.get("type") == "Expr"}
    assert expr == {"Expr[]", "Expr[g]", "Expr[gn]"}
    cyclic = [c for c in nx.strongly_connected_components(G) if len(c) > 1]
    assert all(any(e in c for c in cyclic) for e in expr)
    assert not any(len(expr & c) > 1 for c in cyclic)
    # an Add of a plain and a g-typed tree is a g-typed tree
    assert G.has_edge("Expr[g]", "Expr[g]:Add(Expr[],Expr[g])")


def test_variant_bits_follow_the_expression_type():
    """With both variants, a target with a g-term but no Q(s',a') carries an order and a
    truncation bit: the TD counts double twice for it, and the enumerator agrees."""
    plain, both = Grammar(9, 4), Grammar(9, 4, variants=("act_first", "truncation"))
    cp = GG.program_counts(LG.grammar_graph(plain, 18), 18)
    cb = GG.program_counts(LG.grammar_graph(both, 18), 18)
    # the same trees, typed the same way
    assert cp["Expr[g]"] == cb["Expr[g]"]
    # Q-learning's block: tree 7 bits (r + g max) -> 9 with both bits; the gamma code follows
    assert min(cb["TargetBlock:Expr[g]"]) == min(cp["TargetBlock:Expr[g]"]) + 2
    assert min(cb["TargetBlock:Expr[gn]"]) == min(cp["TargetBlock:Expr[gn]"]) + 1  # SARSA: truncation bit only
    assert min(cb["TargetBlock:Expr[]"]) == min(cp["TargetBlock:Expr[]"]) + 1     # r only: order bit only


def test_closed_forms_equal_the_dynamic_programme():
    B = 18
    val = GG.program_counts(LG.grammar_graph(GRAMMARS["darkroom5"], B), B)
    iv = lambda n: GG.integer_vector(val[n], B)  # noqa: E731
    assert GG.series_counts(GG.gamma_gf(), B) == iv("EliasGamma")
    assert GG.series_counts(GG.positive_rational_gf(), B) == iv("PositiveRational")
    assert GG.series_counts(GG.signed_rational_gf(), B) == iv("SignedRational")
    assert GG.series_counts(GG.power_of_two_gf(), B) == iv("PowerOfTwo")
    trees = [sum(v) for v in zip(*(iv(n) for n in ("Expr[]", "Expr[g]", "Expr[gn]")))]
    assert GG.series_counts(LG.expression_gf(), B) == trees
    # and against the codes' own enumerators
    assert GG.series_counts(GG.signed_rational_gf(), B) == TC.length_counts([b for _, b in C.signed_rationals(B)], B)
    assert GG.series_counts(GG.power_of_two_gf(), B) == TC.length_counts([b for _, b in C.powers_of_two(B)], B)
    assert iv("UnitRational") == TC.length_counts([b for _, b in C.unit_rationals(B)], B)


def test_codes_are_complete_and_trees_grow_below_two_per_bit():
    for gf in (GG.gamma_gf(), GG.positive_rational_gf(), GG.signed_rational_gf(), GG.power_of_two_gf(),
               LG.expression_gf()):
        assert GG.kraft_mass(gf) == 1
    rate = LG.expression_growth_rate()
    assert 1.5 < rate < 2.0
    c = GG.series_counts(LG.expression_gf(), 50)
    assert abs((c[50] / c[40]) ** 0.1 / rate - 1) < 0.05


def test_symbolic_bound_on_the_counts_is_the_numeric_bound():
    g, B = GRAMMARS["bandit5"], 11  # every program of the bandit grammar is listed (no family outgrows B)
    space = enumerate_programs(g, B)
    total = GG.total_counts(GG.kind_counts(LG.grammar_graph(g, B), B))
    log2Z = GG.log2_kraft_mass(total)
    assert log2Z == pytest.approx(space.log2_normaliser(), abs=1e-9)
    assert log2Z < 0
    lengths = [l for l, n in total.items() for _ in range(n)]
    log2Z_sym = S.log2_normaliser(lengths)
    assert float(log2Z_sym) == pytest.approx(log2Z, abs=1e-9)
    L_raw, l_bits, n_steps, eps = 37.5, 9.0, 400, 0.01
    sym = S.evaluate(S.per_sequence_bound(smoothed=False).subs(S.log2Z, log2Z_sym),
                     {"L": L_raw, "l": l_bits, "n": n_steps, "eps": eps})
    num = bounds.per_sequence_bound(L_raw, l_bits, log2Z, n_steps=n_steps, smoothing_eps=eps, smoothed=False)
    assert sym == pytest.approx(float(num), rel=1e-12)


def test_the_graph_reads_every_variant_the_grammar_has():
    assert set(VARIANTS) <= set(LG.KNOWN_VARIANTS)


def test_unknown_kind_is_an_error_not_a_miscount():
    class Wider(Grammar):
        def kinds(self):
            return super().kinds() + ("Decaying",)

    with pytest.raises(GG.GrammarGraphError, match="Decaying"):
        LG.grammar_graph(Wider(4, 2), 12)


def test_counts_by_ceil_bits_bins_like_the_enumerator():
    assert GG.counts_by_ceil_bits({3.0: 2, 3.2: 1, 4.0: 5}, 4) == [0, 0, 0, 2, 6]
    assert math.isclose(GG.log2_kraft_mass({1.0: 2}), 0.0)


def test_graph_dp_counts_a_hand_built_tree_grammar_as_its_closed_form_and_by_hand():
    """Pure theory, no learners: trees T -> 'a' (1 bit) | 'b' (2 bits) | '+' T T (2-bit tag).
    By hand: length 1: a; 2: b; 3: none; 4: +aa; 5: +ab, +ba; 6: +bb; 7: +a(+aa), +(+aa)a."""
    b = GG.GraphBuilder(12)
    T = b.nonterminal("T")
    b.production(T, "a", 1)
    b.production(T, "b", 2)
    b.production(T, "+", 2, [T, T])
    dp = GG.integer_vector(GG.program_counts(b.g, 12)["T"], 12)
    assert dp[:8] == [0, 1, 1, 0, 1, 2, 1, 2]
    gf = GG.tree_gf(GG.x + GG.x ** 2, GG.x ** 2)
    assert GG.series_counts(gf, 12) == dp
    assert GG.tree_growth_rate(GG.x + GG.x ** 2, GG.x ** 2) > 1
