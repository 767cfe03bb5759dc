"""Universal codes: lengths match code words, decode inverts encode, prefix-freeness, Kraft sums."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from theory import codes as C
from theory import counts


def test_elias_lengths_match_words_and_roundtrip():
    words_g, words_d = [], []
    for n in range(1, 3000):
        g, d = C.elias_gamma_encode(n), C.elias_delta_encode(n)
        assert len(g) == C.elias_gamma_bits(n) == 2 * int(math.floor(math.log2(n))) + 1
        assert len(d) == C.elias_delta_bits(n)
        assert C.elias_gamma_decode(g + "1011") == (n, len(g))
        assert C.elias_delta_decode(d + "0") == (n, len(d))
        words_g.append(g)
        words_d.append(d)
    assert C.is_prefix_free(words_g) and C.is_prefix_free(words_d)
    # vectorised lengths agree with the scalar ones, including just below powers of two
    ns = np.array([1, 2, 3, 7, 8, 1023, 1024, 2**40 - 1, 2**40, 2**52 - 1])
    assert list(C.elias_gamma_bits(ns)) == [C.elias_gamma_bits(int(n)) for n in ns]
    assert C.elias_delta_bits(2**20) < C.elias_gamma_bits(2**20)


def test_kraft_sums_of_integer_codes_are_one_in_the_limit():
    # gamma: exactly 1 - 2^-(k+1) after all n < 2^(k+1)
    for k in range(1, 12):
        s = C.kraft_sum(C.elias_gamma_bits(n) for n in range(1, 2 ** (k + 1)))
        assert s == pytest.approx(1 - 2.0 ** -(k + 1), abs=1e-15)
    # delta: the 2^(L-1) integers of bit length L share one length, so the sum over all n below
    # 2^K is the gamma Kraft sum over L <= K: exactly 1 - 2^-(floor(log2 K) + 1) for K = 2^j - 1
    for K in (1, 3, 7, 15, 31, 63, 127):
        total = C.kraft_sum(C.elias_delta_bits(2 ** (L - 1)) - (L - 1) for L in range(1, K + 1))
        assert total == pytest.approx(1 - 1 / (K + 1), abs=1e-15)
    assert C.kraft_sum(C.elias_delta_bits(n) for n in range(1, 2 ** 15)) == pytest.approx(1 - 1 / 16)


def test_truncated_binary_is_complete_and_prefix_free():
    for k in range(1, 70):
        words = [C.truncated_binary_encode(i, k) for i in range(k)]
        assert [len(w) for w in words] == list(C.truncated_binary_lengths(k))
        assert C.kraft_sum(len(w) for w in words) == pytest.approx(1.0)
        if k > 1:
            assert C.is_prefix_free(words)
        for i, w in enumerate(words):
            assert C.truncated_binary_decode(w + "1", k) == (i, len(w))


@pytest.mark.parametrize("kind", ["unit", "positive", "signed"])
def test_rational_codes(kind):
    enum = {"unit": C.unit_rationals, "positive": C.positive_rationals, "signed": C.signed_rationals}[kind]
    enc = getattr(C, f"{kind}_rational_encode")
    dec = getattr(C, f"{kind}_rational_decode")
    bits = getattr(C, f"{kind}_rational_bits")
    items = enum(16)
    values = [v for v, _ in items]
    assert len(set(values)) == len(values), "each rational has one code word"
    words = [enc(v) for v in values]
    assert C.is_prefix_free(words)
    for (v, b), w in zip(items, words):
        assert len(w) == b == bits(v)
        assert dec(w + "0110") == (v, b)
    assert C.kraft_sum(b for _, b in items) <= 1.0
    # the code is complete: the Kraft sum approaches 1 as the budget grows
    assert C.kraft_sum(b for _, b in enum(20)) > C.kraft_sum(b for _, b in items)


def test_teacher_parameters_have_sensible_lengths():
    F = Fraction
    assert C.unit_rational_bits(F(1, 2)) == 1
    assert C.unit_rational_bits(F(1, 4)) == 4
    assert C.unit_rational_bits(F(1, 10)) == C.unit_rational_bits(F(9, 10)) == 9
    assert C.positive_rational_bits(1) == 2 and C.positive_rational_bits(2) == 4
    assert C.signed_rational_bits(0) == 1
    with pytest.raises(C.CodeError):
        C.unit_rational_bits(F(1))
    with pytest.raises(C.CodeError):
        C.unit_rational_bits(0.1)  # floats are not exact rationals
    with pytest.raises(C.CodeError):
        C.elias_gamma_decode("000")


def test_counts_match_enumeration():
    # unit rationals by length, and a product of two independent parts
    u = counts.length_counts([b for _, b in C.unit_rationals(12)], 12)
    p = counts.length_counts([b for _, b in C.positive_rationals(12)], 12)
    prod = counts.product_counts([u, p], 12)
    brute = counts.length_counts([a + b for _, a in C.unit_rationals(12) for _, b in C.positive_rationals(12) if a + b <= 12], 12)
    assert prod == brute
    assert counts.primitive_sequences(2, 4) == 12 and counts.primitive_sequences(5, 1) == 5
    assert sum(counts.primitive_sequences(3, d) for d in (1, 2, 3, 6)) == 3 ** 6
    assert counts.simplex_grid_points(2, 3) == 6
    # trees: one leaf of 1 bit, binary node of 1 bit -> Catalan numbers at odd lengths
    f = counts.tree_counts([0, 1], [], [1], 11)
    assert [f[n] for n in (1, 3, 5, 7, 9, 11)] == [1, 1, 2, 5, 14, 42]
