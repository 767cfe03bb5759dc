"""Universal prefix codes for integers and discretised reals (pure functions, no I/O).

Every code here is *prefix-free* and comes as a triple: ``*_bits`` (the code length), ``*_encode``
(the code word as a string of '0'/'1') and ``*_decode`` (read one code word from a bit string at a
position, return the value and the next position). The Kraft sums of the integer codes are 1
(they are complete), which ``tests/test_theory_codes.py`` checks numerically.

Integers (n >= 1):

* Elias gamma: ``floor(log2 n)`` zeros, then n in binary. ``2 floor(log2 n) + 1`` bits.
* Elias delta: the bit length of n in gamma, then n without its leading 1.
  ``floor(log2 n) + 2 floor(log2(floor(log2 n) + 1)) + 1`` bits (shorter than gamma from n = 32).

A uniform choice among k symbols uses the truncated binary code (the first
``2^(floor(log2 k)+1) - k`` symbols get ``floor(log2 k)`` bits, the rest one more): Kraft sum
exactly 1, lengths within one bit of ``log2 k``.

Rationals (what the program grammar uses for its real-valued parameters):

* ``unit_rational`` -- p/q in (0, 1) in lowest terms: gamma(q - 1), then the rank of p among the
  phi(q) numerators coprime to q (truncated binary). Every rational in (0, 1) has exactly one
  code word; 1/2 costs 1 bit, 1/4 and 3/4 4 bits, 1/10 and 9/10 9 bits, 2^-k about 2k bits.
  The code favours small denominators, i.e. "simple" numbers in the usual sense.
* ``positive_rational`` -- p/q > 0 in lowest terms: gamma(q), then gamma of the rank of p among the
  positive integers coprime to q. 1 costs 2 bits, 2 and 1/2 4 bits.
* ``signed_rational`` -- '0' for zero, else '1', a sign bit and a positive rational.

Scales (temperatures, bonus sizes), whose natural prior is log-uniform:

* ``signed_integer`` -- '0' for 0, else '1', a sign bit and gamma(|k|) (1, 3, 3, 5, 5, 5, 5 ... bits);
* ``power_of_two`` -- 2^k with k coded as a signed integer: 1 costs 1 bit, 2 and 1/2 3 bits,
  4, 8, 1/4, 1/8 5 bits.
"""
from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache
from typing import Iterable

import numpy as np


class CodeError(ValueError):
    """A value outside a code's domain, or a bit string that is not a code word."""


# ---------------------------------------------------------------------------------------------
# Integers
# ---------------------------------------------------------------------------------------------
def _check_pos(n: int, name: str) -> int:
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise CodeError(f"{name} codes positive integers, got {n!r}")
    return int(n)


def elias_gamma_bits(n):
    """Length of the Elias gamma code of n >= 1 (vectorised over arrays)."""
    if np.ndim(n):
        n = np.asarray(n, dtype=np.int64)
        if (n < 1).any():
            raise CodeError("elias_gamma codes positive integers")
        return 2 * (np.floor(np.log2(n.astype(np.float64))).astype(np.int64) - _log2_fix(n)) + 1
    n = _check_pos(n, "elias_gamma")
    return 2 * (n.bit_length() - 1) + 1


def _log2_fix(n: np.ndarray) -> np.ndarray:
    """Correct floor(log2(float(n))) where float rounding overshoots (n just below 2^k)."""
    fl = np.floor(np.log2(n.astype(np.float64))).astype(np.int64)
    return (np.left_shift(np.int64(1), fl) > n).astype(np.int64)


def elias_gamma_encode(n: int) -> str:
    n = _check_pos(n, "elias_gamma")
    b = bin(n)[2:]
    return "0" * (len(b) - 1) + b


def elias_gamma_decode(bits: str, pos: int = 0) -> tuple[int, int]:
    z = 0
    while pos + z < len(bits) and bits[pos + z] == "0":
        z += 1
    end = pos + 2 * z + 1
    if end > len(bits):
        raise CodeError(f"truncated Elias gamma code word at bit {pos}")
    return int(bits[pos + z:end], 2), end


def elias_delta_bits(n):
    """Length of the Elias delta code of n >= 1 (vectorised over arrays)."""
    if np.ndim(n):
        return np.array([elias_delta_bits(int(x)) for x in np.asarray(n).ravel()], dtype=np.int64).reshape(np.shape(n))
    n = _check_pos(n, "elias_delta")
    L = n.bit_length()
    return (L - 1) + elias_gamma_bits(L)


def elias_delta_encode(n: int) -> str:
    n = _check_pos(n, "elias_delta")
    b = bin(n)[2:]
    return elias_gamma_encode(len(b)) + b[1:]


def elias_delta_decode(bits: str, pos: int = 0) -> tuple[int, int]:
    L, pos = elias_gamma_decode(bits, pos)
    end = pos + L - 1
    if end > len(bits):
        raise CodeError(f"truncated Elias delta code word at bit {pos}")
    return int("1" + bits[pos:end], 2), end


# ---------------------------------------------------------------------------------------------
# Uniform choice among k symbols: truncated binary
# ---------------------------------------------------------------------------------------------
def truncated_binary_bits(i: int, k: int) -> int:
    """Length of the code word of symbol ``i`` (0-based) of a uniform choice among ``k``."""
    if k < 1 or not 0 <= i < k:
        raise CodeError(f"symbol {i} outside a choice among {k}")
    if k == 1:
        return 0
    m = k.bit_length() - 1          # floor(log2 k)
    u = (1 << (m + 1)) - k          # symbols given m bits
    return m if i < u else m + 1


def truncated_binary_encode(i: int, k: int) -> str:
    n = truncated_binary_bits(i, k)
    if n == 0:
        return ""
    m = k.bit_length() - 1
    u = (1 << (m + 1)) - k
    v = i if i < u else i + u
    return format(v, f"0{n}b")


def truncated_binary_decode(bits: str, k: int, pos: int = 0) -> tuple[int, int]:
    if k < 1:
        raise CodeError(f"a choice among {k} symbols")
    if k == 1:
        return 0, pos
    m = k.bit_length() - 1
    u = (1 << (m + 1)) - k
    if pos + m > len(bits):
        raise CodeError(f"truncated code word at bit {pos}")
    v = int(bits[pos:pos + m], 2) if m else 0
    if v < u:
        return v, pos + m
    if pos + m + 1 > len(bits):
        raise CodeError(f"truncated code word at bit {pos}")
    v = int(bits[pos:pos + m + 1], 2)
    return v - u, pos + m + 1


def truncated_binary_lengths(k: int) -> np.ndarray:
    """Code lengths of all k symbols (Kraft sum exactly 1)."""
    return np.array([truncated_binary_bits(i, k) for i in range(k)], dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# Rationals
# ---------------------------------------------------------------------------------------------
@lru_cache(maxsize=4096)
def _coprimes_below(q: int) -> tuple[int, ...]:
    return tuple(p for p in range(1, q) if math.gcd(p, q) == 1)


def _coprime_rank(p: int, q: int) -> int:
    """1-based rank of p among the positive integers coprime to q."""
    period = _coprimes_below(q) if q > 1 else ()
    phi = len(period) if q > 1 else 1
    if q == 1:
        return p
    k, r = divmod(p, q)
    return k * phi + sum(1 for c in period if c <= r)


def _coprime_by_rank(rank: int, q: int) -> int:
    if q == 1:
        return rank
    period = _coprimes_below(q)
    k, r = divmod(rank - 1, len(period))
    return k * q + period[r]


def _as_fraction(x) -> Fraction:
    if isinstance(x, Fraction):
        return x
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return Fraction(int(x))
    if isinstance(x, str):
        return Fraction(x)
    raise CodeError(f"expected an exact rational (Fraction, int or 'p/q' string), got {x!r}")


def unit_rational_bits(x) -> int:
    """Code length of a rational in (0, 1) (lowest terms, denominator first)."""
    x = _as_fraction(x)
    if not 0 < x < 1:
        raise CodeError(f"unit_rational codes rationals in (0, 1), got {x}")
    p, q = x.numerator, x.denominator
    cop = _coprimes_below(q)
    return elias_gamma_bits(q - 1) + truncated_binary_bits(cop.index(p), len(cop))


def unit_rational_encode(x) -> str:
    x = _as_fraction(x)
    unit_rational_bits(x)
    p, q = x.numerator, x.denominator
    cop = _coprimes_below(q)
    return elias_gamma_encode(q - 1) + truncated_binary_encode(cop.index(p), len(cop))


def unit_rational_decode(bits: str, pos: int = 0) -> tuple[Fraction, int]:
    qm1, pos = elias_gamma_decode(bits, pos)
    q = qm1 + 1
    cop = _coprimes_below(q)
    i, pos = truncated_binary_decode(bits, len(cop), pos)
    return Fraction(cop[i], q), pos


def positive_rational_bits(x) -> int:
    x = _as_fraction(x)
    if not x > 0:
        raise CodeError(f"positive_rational codes rationals > 0, got {x}")
    return elias_gamma_bits(x.denominator) + elias_gamma_bits(_coprime_rank(x.numerator, x.denominator))


def positive_rational_encode(x) -> str:
    x = _as_fraction(x)
    positive_rational_bits(x)
    return elias_gamma_encode(x.denominator) + elias_gamma_encode(_coprime_rank(x.numerator, x.denominator))


def positive_rational_decode(bits: str, pos: int = 0) -> tuple[Fraction, int]:
    q, pos = elias_gamma_decode(bits, pos)
    rank, pos = elias_gamma_decode(bits, pos)
    return Fraction(_coprime_by_rank(rank, q), q), pos


def signed_rational_bits(x) -> int:
    x = _as_fraction(x)
    return 1 if x == 0 else 2 + positive_rational_bits(abs(x))


def signed_rational_encode(x) -> str:
    x = _as_fraction(x)
    if x == 0:
        return "0"
    return "1" + ("1" if x < 0 else "0") + positive_rational_encode(abs(x))


def signed_rational_decode(bits: str, pos: int = 0) -> tuple[Fraction, int]:
    if pos >= len(bits):
        raise CodeError(f"truncated signed rational at bit {pos}")
    if bits[pos] == "0":
        return Fraction(0), pos + 1
    if pos + 1 >= len(bits):
        raise CodeError(f"truncated signed rational at bit {pos}")
    neg = bits[pos + 1] == "1"
    v, pos = positive_rational_decode(bits, pos + 2)
    return (-v if neg else v), pos


def signed_integer_bits(k: int) -> int:
    if isinstance(k, bool) or int(k) != k:
        raise CodeError(f"signed_integer codes integers, got {k!r}")
    return 1 if k == 0 else 2 + elias_gamma_bits(abs(int(k)))


def signed_integer_encode(k: int) -> str:
    signed_integer_bits(k)
    return "0" if k == 0 else "1" + ("1" if k < 0 else "0") + elias_gamma_encode(abs(int(k)))


def signed_integer_decode(bits: str, pos: int = 0) -> tuple[int, int]:
    if pos >= len(bits):
        raise CodeError(f"truncated signed integer at bit {pos}")
    if bits[pos] == "0":
        return 0, pos + 1
    if pos + 1 >= len(bits):
        raise CodeError(f"truncated signed integer at bit {pos}")
    neg = bits[pos + 1] == "1"
    v, pos = elias_gamma_decode(bits, pos + 2)
    return (-v if neg else v), pos


def log2_exact(x) -> int:
    """k such that x == 2^k exactly, or CodeError."""
    x = _as_fraction(x)
    if x <= 0:
        raise CodeError(f"{x} is not a power of two")
    p, q = x.numerator, x.denominator
    if p & (p - 1) or q & (q - 1):
        raise CodeError(f"{x} is not a power of two")
    return p.bit_length() - q.bit_length()


def power_of_two_bits(x) -> int:
    return signed_integer_bits(log2_exact(x))


def power_of_two_encode(x) -> str:
    return signed_integer_encode(log2_exact(x))


def power_of_two_decode(bits: str, pos: int = 0) -> tuple[Fraction, int]:
    k, pos = signed_integer_decode(bits, pos)
    return (Fraction(2) ** k), pos


# ---------------------------------------------------------------------------------------------
# Enumerating code words by length
# ---------------------------------------------------------------------------------------------
def unit_rationals(max_bits: int) -> list[tuple[Fraction, int]]:
    """Every rational in (0, 1) whose code is at most ``max_bits`` long, shortest first."""
    out = []
    q = 2
    while elias_gamma_bits(q - 1) <= max_bits:
        cop = _coprimes_below(q)
        base = elias_gamma_bits(q - 1)
        for i, p in enumerate(cop):
            b = base + truncated_binary_bits(i, len(cop))
            if b <= max_bits:
                out.append((Fraction(p, q), b))
        q += 1
    return sorted(out, key=lambda t: (t[1], t[0].denominator, t[0]))


def positive_rationals(max_bits: int) -> list[tuple[Fraction, int]]:
    """Every positive rational whose code is at most ``max_bits`` long, shortest first."""
    out = []
    q = 1
    while elias_gamma_bits(q) + 1 <= max_bits:
        bq = elias_gamma_bits(q)
        rank = 1
        while bq + elias_gamma_bits(rank) <= max_bits:
            out.append((Fraction(_coprime_by_rank(rank, q), q), bq + elias_gamma_bits(rank)))
            rank += 1
        q += 1
    return sorted(out, key=lambda t: (t[1], t[0].denominator, t[0]))


def signed_rationals(max_bits: int) -> list[tuple[Fraction, int]]:
    """Every rational (zero, positive, negative) whose code is at most ``max_bits`` long."""
    out = [(Fraction(0), 1)] if max_bits >= 1 else []
    for v, b in positive_rationals(max_bits - 2):
        out.append((v, b + 2))
        out.append((-v, b + 2))
    return sorted(out, key=lambda t: (t[1], t[0].denominator, abs(t[0]), t[0] < 0))


def powers_of_two(max_bits: int) -> list[tuple[Fraction, int]]:
    """Every 2^k whose code is at most ``max_bits`` long, shortest first."""
    out = [(Fraction(1), 1)] if max_bits >= 1 else []
    k = 1
    while 2 + elias_gamma_bits(k) <= max_bits:
        b = 2 + elias_gamma_bits(k)
        out += [(Fraction(2) ** k, b), (Fraction(1, 2 ** k), b)]
        k += 1
    return out


# ---------------------------------------------------------------------------------------------
# Kraft
# ---------------------------------------------------------------------------------------------
def kraft_sum(lengths: Iterable[float]) -> float:
    """sum 2^-l over code lengths l (<= 1 for any prefix-free code; = 1 for a complete one)."""
    return math.fsum(2.0 ** -float(l) for l in lengths)


def is_prefix_free(words: Iterable[str]) -> bool:
    """True when no code word is a prefix of another (sorting puts a prefix right before)."""
    words = list(words)
    ws = sorted(set(words))
    if len(ws) != len(words):
        return False  # a repeated code word is its own prefix
    return all(not ws[i + 1].startswith(ws[i]) for i in range(len(ws) - 1))


__all__ = [
    "CodeError",
    "elias_gamma_bits", "elias_gamma_encode", "elias_gamma_decode",
    "elias_delta_bits", "elias_delta_encode", "elias_delta_decode",
    "truncated_binary_bits", "truncated_binary_encode", "truncated_binary_decode", "truncated_binary_lengths",
    "unit_rational_bits", "unit_rational_encode", "unit_rational_decode",
    "positive_rational_bits", "positive_rational_encode", "positive_rational_decode",
    "signed_rational_bits", "signed_rational_encode", "signed_rational_decode",
    "signed_integer_bits", "signed_integer_encode", "signed_integer_decode", "log2_exact",
    "power_of_two_bits", "power_of_two_encode", "power_of_two_decode",
    "unit_rationals", "positive_rationals", "signed_rationals", "powers_of_two",
    "kraft_sum", "is_prefix_free",
]
