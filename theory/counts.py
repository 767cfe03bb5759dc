"""Counting hypothesis spaces by description length (pure combinatorics, exact integers).

A count vector ``c`` has ``c[b]`` = number of objects whose code is exactly ``b`` bits long
(integer-length prefix codes). Independent parts of a program concatenate their code words, so
the counts of a product are the convolution of the parts' counts; recursive parts (expression
trees) are counted by dynamic programming over the length. These counts are what the program
enumerator must reproduce (tests check it), and they say how fast a hypothesis space grows
with the bit budget: for a complete code the number of programs of length <= B can approach 2^B.
"""
from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence


def length_counts(lengths: Iterable[int], max_bits: int | None = None) -> list[int]:
    """Histogram of integer code lengths (index = bits)."""
    ls = [int(l) for l in lengths]
    top = max(ls, default=0) if max_bits is None else int(max_bits)
    out = [0] * (top + 1)
    for l in ls:
        if l <= top:
            out[l] += 1
    return out


def convolve_counts(a: Sequence[int], b: Sequence[int], max_bits: int) -> list[int]:
    """Counts of pairs (x, y) by total length len(x) + len(y) <= max_bits."""
    out = [0] * (max_bits + 1)
    for i, ca in enumerate(a):
        if not ca or i > max_bits:
            continue
        for j, cb in enumerate(b):
            if i + j > max_bits:
                break
            out[i + j] += ca * cb
    return out


def product_counts(parts: Sequence[Sequence[int]], max_bits: int) -> list[int]:
    """Counts of tuples of independent parts by total length (the parts' codes concatenated)."""
    out = [1] + [0] * max_bits
    for p in parts:
        out = convolve_counts(out, p, max_bits)
    return out


def shift_counts(c: Sequence[int], bits: int, max_bits: int) -> list[int]:
    """Counts after prefixing every code word with ``bits`` more bits."""
    out = [0] * (max_bits + 1)
    for i, n in enumerate(c):
        if i + bits <= max_bits:
            out[i + bits] += n
    return out


def add_counts(*cs: Sequence[int]) -> list[int]:
    n = max(len(c) for c in cs)
    return [sum(c[i] for c in cs if i < len(c)) for i in range(n)]


def cumulative(c: Sequence[int]) -> list[int]:
    out, s = [], 0
    for x in c:
        s += x
        out.append(s)
    return out


def tree_counts(leaves: Sequence[int], unary: Mapping[int, Sequence[int]] | Sequence[tuple[int, Sequence[int]]],
                binary: Sequence[int], max_bits: int) -> list[int]:
    """Number of expression trees by code length.

    ``leaves[b]``: leaf code words of length b (leaf tag and any constant it carries);
    ``unary``: pairs ``(tag_bits, param_counts)`` for nodes with one child and a parameter
    (e.g. scaling by a coded constant); ``binary``: tag lengths of nodes with two children.
    A tree's code is its pre-order walk, so its length is the sum of its nodes' lengths."""
    un = list(unary.items()) if isinstance(unary, Mapping) else list(unary)
    f = [0] * (max_bits + 1)
    for n in range(max_bits + 1):
        total = leaves[n] if n < len(leaves) else 0
        for tag, params in un:
            # tag + param + child; child strictly shorter since tag >= 1
            for pb, pc in enumerate(params):
                rest = n - tag - pb
                if pc and 0 <= rest < n:
                    total += pc * f[rest]
        for tag in binary:
            rest = n - tag
            for i in range(0, rest + 1):
                j = rest - i
                if i < n and j < n:
                    total += f[i] * f[j]
        f[n] = total
    return f


def sequences_of_period(n_symbols: int, period: int) -> int:
    """Sequences of length ``period`` over ``n_symbols`` symbols (= cyclic programs of that period)."""
    return n_symbols ** period


def primitive_sequences(n_symbols: int, period: int) -> int:
    """Sequences whose *minimal* period is exactly ``period`` (Moebius inversion). Cyclic programs
    of period L that are not primitive repeat a shorter one: semantic duplicates."""
    return sum(_mobius(d) * n_symbols ** (period // d) for d in range(1, period + 1) if period % d == 0)


def _mobius(n: int) -> int:
    m, p = 1, 2
    while p * p <= n:
        if n % p == 0:
            n //= p
            if n % p == 0:
                return 0
            m = -m
        p += 1
    return -m if n > 1 else m


def simplex_grid_points(resolution: int, n_actions: int) -> int:
    """Distributions over ``n_actions`` with probabilities in multiples of 1/resolution."""
    return math.comb(resolution + n_actions - 1, n_actions - 1)


def deterministic_policies(n_states: int, n_actions: int) -> int:
    """Reactive tables obs -> action: n_actions ** n_states."""
    return n_actions ** n_states


def log2_deterministic_policies(n_states: int, n_actions: int) -> float:
    return n_states * math.log2(n_actions)


__all__ = [
    "length_counts", "convolve_counts", "product_counts", "shift_counts", "add_counts", "cumulative",
    "tree_counts", "sequences_of_period", "primitive_sequences", "simplex_grid_points",
    "deterministic_policies", "log2_deterministic_policies",
]
