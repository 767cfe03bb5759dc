"""Program grammar: exact code lengths, prefix-free code words, source round trips, parse errors,
enumeration counts and Kraft sums, symbolic merging that adds weights."""
from __future__ import annotations

from fractions import Fraction as F

import numpy as np
import pytest

from learners.solomonoff.enumerate import BudgetError, enumerate_programs
from learners.solomonoff.grammar import Grammar
from learners.solomonoff.parser import ProgramParseError, parse_expr, parse_program
from learners.solomonoff.prefix_code import expr_bits, iter_exprs
from learners.solomonoff.printer import expr_source, program_source
from learners.solomonoff.syntax import (TD, UCB1, Add, Const, Constant, Cyclic, Explore, Leaf, Reactive, Stochastic, Sub,
                                        Thompson, expr_has_gamma, linear_form)
from theory import codes as C
from theory import counts as K

G = Grammar(9, 3)


def _random_td(rng, g=G):
    init = rng.choice([F(0), F(1), F(-1, 2), F(3)])
    alpha = rng.choice([None, F(1, 4), F(2, 3), F(1, 10)])
    target = rng.choice([Add(Leaf("r"), Leaf("max")), Sub(Leaf("next"), Const(F(1, 2))), Leaf("r"),
                         Add(Leaf("exp"), Add(Leaf("r"), Leaf("r")))])
    gamma = rng.choice([F(1, 2), F(9, 10), F(3, 7)]) if expr_has_gamma(target) else None
    explore = rng.choice([Explore("greedy"), Explore("eps_greedy", F(1, 10)), Explore("softmax", F(1, 4)),
                          Explore("count_bonus", F(2))])
    return TD(init, alpha, target, gamma, explore)


def test_code_words_round_trip_and_are_prefix_free():
    rng = np.random.default_rng(0)
    progs = {_random_td(rng) for _ in range(300)} | {UCB1(F(2)), UCB1(F(1, 3)), Thompson(1, 1), Thompson(2, 5)}
    words = []
    g1 = Grammar(1, 3, bandit=True)
    for p in progs:
        g = g1 if isinstance(p, (UCB1, Thompson)) else G
        w = g.encode(p)
        assert len(w) == g.bits(p)
        q, end = g.decode(w + "0101")
        assert q == p and end == len(w)
        words.append(w)
    assert C.is_prefix_free(words)


def test_default_teacher_lengths():
    q = parse_program("QLearning(init=0, alpha=1/4, gamma=9/10, explore=eps_greedy(1/10))")
    # kind 1 + init 1 + step (1 + 4) + target 7 + gamma 9 + explore (2 + 9)
    assert G.bits(q) == 34
    assert G.bits(parse_program("SARSA(init=0, alpha=1/n, gamma=1/2, explore=greedy)")) == 1 + 1 + 1 + 7 + 1 + 2
    assert Grammar(1, 5, bandit=True).bits(UCB1(F(2))) == 3 + 4
    assert G.bits(Constant(1)) == pytest.approx(4 + np.log2(3))


def test_source_round_trip_for_every_kind():
    rng = np.random.default_rng(1)
    progs = [_random_td(rng) for _ in range(100)]
    progs += [Constant(2), Stochastic((1, 0, 3)), Cyclic("episode", (0, 2, 2)), Cyclic("global", (1,)),
              Reactive(1, 3, ((0, 2), (5, 0)))]
    for p in progs:
        src = program_source(p)
        assert parse_program(src) == p, src
    for e, b in iter_exprs(13):
        assert parse_expr(program_source(TD(F(0), None, e, F(1, 2) if "g*" in _src(e) else None,
                                            Explore("greedy"))).split("target=")[1].split(", gamma")[0].split(", explore")[0]) == e
        assert expr_bits(e) == b


def _src(e):
    return expr_source(e)


@pytest.mark.parametrize("text,fragment", [
    ("QLearning(init=0, alpha=1/4, gamma=9/10, explore=eps_greedy(1/10)", "unclosed"),
    ("QLearnin(init=0)", "unknown program kind"),
    ("QLearning(init=0, alpha=1/4, explore=greedy)", "gamma is required"),
    ("QLearning(init=0, alpha=1/4, gamma=9/10, explore=softmax(1/3))", "power of two"),
    ("QLearning(init=0, alpha=1/4, gamma=9/10, explore=eps_greedy(1/10), beta=2)", "unknown argument"),
    ("SARSA(init=0, alpha=1/4, target=r + g*max Q(s'), gamma=1/2, explore=greedy)", "not SARSA's target"),
    ("TD(init=0, alpha=1/4, target=r + g*maxQ(s'), gamma=1/2, explore=greedy)", "expected max Q"),
    ("TD(init=0, alpha=5/4, target=r, explore=greedy)", "alpha must be"),
    ("", "empty program"),
    ("Constant(1, 2)", "one action"),
    ("QLearning(init=0, alpha=1/4, gamma=9/10, explore=eps_greedy(1/10)) extra", "unexpected text"),
])
def test_parse_errors_are_clear(text, fragment):
    with pytest.raises(ProgramParseError, match=fragment):
        parse_program(text)


def test_grammar_rejects_programs_outside_it():
    with pytest.raises(ValueError, match="action"):
        G.parse("Constant(7)")
    with pytest.raises(ValueError, match="not part of the grammar"):
        G.parse("UCB1(c=2)")
    with pytest.raises(ValueError, match="state"):
        G.parse("Reactive(default=0, k=2, table={12: 1})")


def test_linear_forms_merge_equivalent_trees():
    a = parse_expr("r + g*max Q(s')")
    b = parse_expr("g*max Q(s') + r")
    c = parse_expr("r + g*max Q(s') + g*Q(s',a') - g*Q(s',a')")
    assert linear_form(a) == linear_form(b) == linear_form(c)
    assert linear_form(parse_expr("r + r")).r == 2
    assert linear_form(parse_expr("(-1/2)")).const == F(-1, 2)


def test_enumeration_counts_kraft_and_symbolic_merging():
    g = Grammar(6, 2)
    sp = enumerate_programs(g, 15)
    # weights of merged classes add up to the weights of every code word (Kraft sum <= 1)
    assert sp.log2_normaliser() <= 0
    total_words = sum(sum(c) for k, c in sp.counts.items() if k not in ("Cyclic", "Reactive"))
    assert sp.n_explicit() < total_words  # symbolic merging happened
    # TD code words by length = product of the parts' counts (theory.counts), up to 15 bits
    room = 15
    init = K.length_counts([b for _, b in C.signed_rationals(room)], room)
    step = K.add_counts(K.shift_counts([1], 1, room), K.shift_counts(K.length_counts([b for _, b in C.unit_rationals(room)], room), 1, room))
    explore = K.add_counts(K.shift_counts([1], 2, room),
                           K.shift_counts(K.length_counts([b for _, b in C.unit_rationals(room)], room), 2, room),
                           K.shift_counts(K.length_counts([b for _, b in C.powers_of_two(room)], room), 2, room),
                           K.shift_counts(K.length_counts([b for _, b in C.powers_of_two(room)], room), 2, room))
    gam = K.length_counts([b for _, b in C.unit_rationals(room)], room)
    with_g, without_g = [0] * (room + 1), [0] * (room + 1)
    for e, b in iter_exprs(room):
            (with_g if expr_has_gamma(e) else without_g)[b] += 1
    target = K.add_counts(without_g, K.convolve_counts(with_g, gam, room))
    expected = K.shift_counts(K.product_counts([init, step, target, explore], room), 1, room)
    assert sp.counts["TD"] == expected
    # a larger budget holds more programs and more prior mass
    sp2 = enumerate_programs(g, 17)
    assert sp2.n_explicit() > sp.n_explicit() and sp2.log2_normaliser() > sp.log2_normaliser()


def test_budget_errors():
    with pytest.raises(BudgetError, match="no program"):
        enumerate_programs(G, 3)
    with pytest.raises(BudgetError, match="finite"):
        enumerate_programs(G, float("nan"))
    with pytest.raises(BudgetError, match="unknown program part"):
        enumerate_programs(G, 20, part_budgets={"beta": 3})
    # a Kt budget removes expensive programs first
    sp = enumerate_programs(G, 14)
    kt = enumerate_programs(G, 14, max_kt=18)
    assert kt.n_explicit() < sp.n_explicit()
    assert (kt.td["bits"] + np.log2(kt.td["steps"]) <= 18 + 1e-9).all()


def test_speed_prior_charges_compute():
    g = Grammar(1, 3, bandit=True)
    length = enumerate_programs(g, 12)
    speed = enumerate_programs(g, 12, prior="speed")
    # same programs, weights divided by their steps per prediction (Kt = bits + log2 steps)
    assert np.array_equal(length.td["bits"], speed.td["bits"])
    assert np.allclose(speed.td["log2w"], length.td["log2w"] - np.log2(speed.td["steps"]))
    th_len = {p: w for p, _, w, _ in length.thompson}
    for p, b, w, steps in speed.thompson:
        assert w == pytest.approx(th_len[p] - np.log2(steps))
    # Thompson sampling (a quadrature per step) is the most expensive program kind
    assert min(s for *_, s in speed.thompson) > max(speed.td["steps"])


def test_decimal_literals_read_as_exact_rationals():
    assert parse_program("QLearning(init=0, alpha=0.5, gamma=0.9, explore=eps_greedy(0.1))") == \
        parse_program("QLearning(init=0, alpha=1/2, gamma=9/10, explore=eps_greedy(1/10))")
    p = parse_program("SARSA(init=-0.25, alpha=.75, gamma=1/2, explore=softmax(0.5))")
    assert (p.init, p.alpha, p.explore.param) == (F(-1, 4), F(3, 4), F(1, 2))
    # forms that are not numbers of the grammar say which forms are
    with pytest.raises(ProgramParseError, match=r"fractions \(1/4\) or decimals \(0.25\)"):
        parse_program("QLearning(init=0, alpha=1e-1, gamma=1/2, explore=greedy)")
    with pytest.raises(ProgramParseError, match="must be an integer, got 3/2"):
        parse_program("Constant(1.5)")
    with pytest.raises(ProgramParseError, match="must be an integer"):
        parse_program("Cyclic(clock=episode, seq=[1, 0.5])")
