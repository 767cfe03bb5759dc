"""The prefix-free code of program trees: code words, exact description lengths, decoding.

The code of a tree is the concatenation of its parts' code words in pre-order, so a program's
description length is exact and the set of all programs satisfies Kraft's inequality (tests
check it by encoding and decoding). The code words are listed in ``grammar``'s docstring; the
lengths of the choices that depend on the observation and action spaces (an action, a state)
are computed by ``Grammar.bits``.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Iterator

from learners.solomonoff.syntax import (TD, UCB1, Add, Const, Explore, Expr, Leaf, Program, Schedule, Sub, Thompson,
                                        expr_has_gamma)
from theory import codes as C

KIND_TAG = {"TD": "1", "UCB1": "010", "Thompson": "011", "Constant": "0000", "Stochastic": "0001",
            "Cyclic": "0010", "Reactive": "0011"}
LEAF_TAG = {"r": "01", "max": "100", "next": "101", "exp": "110"}
ADD_TAG, SUB_TAG, CONST_TAG = "00", "1110", "1111"
EXPLORE_TAG = {"greedy": "00", "eps_greedy": "01", "softmax": "10", "count_bonus": "11"}


# =============================================================================================
# Target expressions
# =============================================================================================
def expr_bits(e: Expr) -> int:
    if isinstance(e, Leaf):
        return len(LEAF_TAG[e.name])
    if isinstance(e, Const):
        return len(CONST_TAG) + C.signed_rational_bits(e.value)
    if isinstance(e, Add):
        return len(ADD_TAG) + expr_bits(e.left) + expr_bits(e.right)
    if isinstance(e, Sub):
        return len(SUB_TAG) + expr_bits(e.left) + expr_bits(e.right)
    raise TypeError(f"not a target expression: {e!r}")



def expr_encode(e: Expr) -> str:
    if isinstance(e, Leaf):
        return LEAF_TAG[e.name]
    if isinstance(e, Const):
        return CONST_TAG + C.signed_rational_encode(e.value)
    if isinstance(e, Add):
        return ADD_TAG + expr_encode(e.left) + expr_encode(e.right)
    if isinstance(e, Sub):
        return SUB_TAG + expr_encode(e.left) + expr_encode(e.right)
    raise TypeError(f"not a target expression: {e!r}")


def expr_decode(bits: str, pos: int = 0) -> tuple[Expr, int]:
    def take(n: int) -> str:
        if pos + n > len(bits):
            raise C.CodeError(f"truncated expression at bit {pos}")
        return bits[pos:pos + n]

    if take(2) == ADD_TAG:
        a, p = expr_decode(bits, pos + 2)
        b, p = expr_decode(bits, p)
        return Add(a, b), p
    for name, tag in LEAF_TAG.items():
        if bits.startswith(tag, pos):
            return Leaf(name), pos + len(tag)
    if bits.startswith(SUB_TAG, pos):
        a, p = expr_decode(bits, pos + 4)
        b, p = expr_decode(bits, p)
        return Sub(a, b), p
    if bits.startswith(CONST_TAG, pos):
        v, p = C.signed_rational_decode(bits, pos + 4)
        return Const(v), p
    raise C.CodeError(f"truncated expression at bit {pos}")



def iter_exprs(max_bits: int) -> Iterator[tuple[Expr, int]]:
    """Every target expression tree of at most ``max_bits`` bits, by increasing length."""
    by_len: dict[int, list[Expr]] = {}
    consts = C.signed_rationals(max(0, max_bits - len(CONST_TAG)))
    for n in range(max_bits + 1):
        cur: list[Expr] = []
        for name, tag in LEAF_TAG.items():
            if len(tag) == n:
                cur.append(Leaf(name))
        for v, b in consts:
            if len(CONST_TAG) + b == n:
                cur.append(Const(v))
        for tag, node in ((ADD_TAG, Add), (SUB_TAG, Sub)):
            rest = n - len(tag)
            for i in range(2, rest - 1):
                for a in by_len.get(i, ()):
                    for b in by_len.get(rest - i, ()):
                        cur.append(node(a, b))
        by_len[n] = cur
        for e in cur:
            yield e, n


# =============================================================================================
# Action rules
# =============================================================================================
def _reciprocal_encode(x) -> str:
    """1/n (n >= 2) as the Elias gamma word of n - 1: 1/2 one bit, 1/10 7 bits, 1/100 13 bits."""
    return C.elias_gamma_encode(int(1 / x) - 1)


def _reciprocal_decode(bits: str, pos: int) -> tuple[Fraction, int]:
    m, p = C.elias_gamma_decode(bits, pos)
    return Fraction(1, m + 1), p


SHAPE_TAG = {"exp": "0", "linear": "10", "exp_to_floor": "11"}


def schedule_encode(eps0: Fraction, sch: Schedule | None) -> str:
    """The epsilon word of a grammar with the ``eps_schedule`` variant: '0' + eps (constant) |
    '1' + start ('0' = 1 | '1' + eps) + per ('0' episode | '1' step) + shape ('0' exp | '10'
    linear | '11' exp_to_floor) + rate 1/n + floor ('0' = 0 | '1' + 1/n)."""
    if sch is None:
        return "0" + C.unit_rational_encode(eps0)
    return ("1" + ("0" if eps0 == 1 else "1" + C.unit_rational_encode(eps0))
            + ("0" if sch.per == "episode" else "1") + SHAPE_TAG[sch.shape]
            + _reciprocal_encode(sch.rate) + ("0" if sch.floor == 0 else "1" + _reciprocal_encode(sch.floor)))


def schedule_decode(bits: str, pos: int) -> tuple[Fraction, Schedule | None, int]:
    def bit(p: int) -> bool:
        if p >= len(bits):
            raise C.CodeError(f"truncated epsilon schedule at bit {p}")
        return bits[p] == "1"

    if not bit(pos):
        v, p = C.unit_rational_decode(bits, pos + 1)
        return v, None, p
    p = pos + 1
    if bit(p):
        eps0, p = C.unit_rational_decode(bits, p + 1)
    else:
        eps0, p = Fraction(1), p + 1
    per = "step" if bit(p) else "episode"
    if not bit(p + 1):
        shape, p = "exp", p + 2
    else:
        shape, p = ("exp_to_floor" if bit(p + 2) else "linear"), p + 3
    rate, p = _reciprocal_decode(bits, p)
    floor = Fraction(0)
    if bit(p):
        floor, p = _reciprocal_decode(bits, p + 1)
    else:
        p += 1
    return eps0, Schedule(per, shape, rate, floor), p


def explore_encode(e: Explore, ties: bool = False, schedules: bool = False) -> str:
    """The action rule's word: kind tag, then (grammar with ``ties``, greedy / eps_greedy) the
    tie bit ('0' uniform, '1' first index), then the parameter (with ``schedules``, eps_greedy's
    is the epsilon word of ``schedule_encode``)."""
    tag = EXPLORE_TAG[e.kind]
    if ties and e.kind in ("greedy", "eps_greedy"):
        tag += "1" if e.ties == "first" else "0"
    if e.kind == "greedy":
        return tag
    if e.kind == "eps_greedy":
        return tag + (schedule_encode(e.param, e.schedule) if schedules else C.unit_rational_encode(e.param))
    return tag + C.power_of_two_encode(e.param)


def explore_bits(e: Explore, ties: bool = False, schedules: bool = False) -> int:
    return len(explore_encode(e, ties, schedules))


def explore_decode(bits: str, pos: int, ties: bool = False, schedules: bool = False) -> tuple[Explore, int]:
    tag = bits[pos:pos + 2]
    kind = {v: k for k, v in EXPLORE_TAG.items()}.get(tag)
    if kind is None:
        raise C.CodeError(f"truncated action rule at bit {pos}")
    pos += 2
    tie = "uniform"
    if ties and kind in ("greedy", "eps_greedy"):
        if pos >= len(bits):
            raise C.CodeError(f"truncated action rule at bit {pos}")
        tie, pos = ("first" if bits[pos] == "1" else "uniform"), pos + 1
    if kind == "greedy":
        return Explore(kind, ties=tie), pos
    if kind == "eps_greedy":
        if schedules:
            v, sch, p = schedule_decode(bits, pos)
            return Explore(kind, v, tie, sch), p
        v, p = C.unit_rational_decode(bits, pos)
        return Explore(kind, v, tie), p
    v, p = C.power_of_two_decode(bits, pos)
    return Explore(kind, v), p


# =============================================================================================
# Programs with integer-length code words (TD, UCB1, Thompson)
# =============================================================================================
def codes_order(target: Expr, orders: bool) -> bool:
    """Whether a TD program's code has an order word: in a grammar with the act-first variant
    (``orders``), for targets without ``Q(s',a')`` (those always act first)."""
    return orders and not _has_next(target)


def codes_truncation(target: Expr, truncations: bool) -> bool:
    """Whether a TD program's code has a truncation word: in a grammar with the truncation
    variant, for targets with a g-term (the only ones that bootstrap)."""
    return truncations and expr_has_gamma(target)


def _has_next(e: Expr) -> bool:
    if isinstance(e, Leaf):
        return e.name == "next"
    if isinstance(e, (Add, Sub)):
        return _has_next(e.left) or _has_next(e.right)
    return False


def td_bits(p: TD, orders: bool = False, truncations: bool = False, ties: bool = False, schedules: bool = False) -> int:
    """Description length of a TD program (its kind word included); ``orders``: the grammar
    codes the order of acting and updating ('0' update first, '1' act first; one bit);
    ``truncations``: what a truncation bootstraps on ('0' the target's terms, '1' nothing);
    ``ties`` / ``schedules``: the action rule's tie and epsilon-schedule words (``explore_encode``)."""
    return (len(KIND_TAG["TD"]) + C.signed_rational_bits(p.init)
            + (1 if p.alpha is None else 1 + C.unit_rational_bits(p.alpha))
            + expr_bits(p.target) + (1 if codes_order(p.target, orders) else 0)
            + (1 if codes_truncation(p.target, truncations) else 0)
            + (0 if p.gamma is None else C.unit_rational_bits(p.gamma)) + explore_bits(p.explore, ties, schedules))


def encode_program(p: Program, orders: bool = False, truncations: bool = False, ties: bool = False,
                   schedules: bool = False) -> str:
    """The code word of a TD / UCB1 / Thompson program (the other kinds use uniform choices
    of log2 n bits, arithmetic-coded, and have no finite binary word here)."""
    tag = KIND_TAG[type(p).__name__]
    if isinstance(p, TD):
        order = ("1" if p.act_first else "0") if codes_order(p.target, orders) else ""
        order += ("1" if p.trunc_terminal else "0") if codes_truncation(p.target, truncations) else ""
        return (tag + C.signed_rational_encode(p.init) + ("1" if p.alpha is None else "0" + C.unit_rational_encode(p.alpha))
                + expr_encode(p.target) + order + ("" if p.gamma is None else C.unit_rational_encode(p.gamma))
                + explore_encode(p.explore, ties, schedules))
    if isinstance(p, UCB1):
        return tag + C.positive_rational_encode(p.c)
    if isinstance(p, Thompson):
        return tag + C.elias_gamma_encode(p.prior_alpha) + C.elias_gamma_encode(p.prior_beta)
    raise ValueError(f"{type(p).__name__} uses uniform (arithmetic-coded) choices; use Grammar.bits()")


def decode_program(bits: str, pos: int = 0, orders: bool = False, truncations: bool = False, ties: bool = False,
                   schedules: bool = False) -> tuple[Program, int]:
    """Inverse of ``encode_program``."""
    if bits.startswith(KIND_TAG["TD"], pos):
        init, p = C.signed_rational_decode(bits, pos + 1)
        if p >= len(bits):
            raise C.CodeError("truncated program")
        if bits[p] == "1":
            alpha, p = None, p + 1
        else:
            alpha, p = C.unit_rational_decode(bits, p + 1)
        target, p = expr_decode(bits, p)
        act_first = False
        if codes_order(target, orders):
            if p >= len(bits):
                raise C.CodeError("truncated program")
            act_first, p = bits[p] == "1", p + 1
        trunc_terminal = False
        if codes_truncation(target, truncations):
            if p >= len(bits):
                raise C.CodeError("truncated program")
            trunc_terminal, p = bits[p] == "1", p + 1
        gamma = None
        if expr_has_gamma(target):
            gamma, p = C.unit_rational_decode(bits, p)
        explore, p = explore_decode(bits, p, ties, schedules)
        return TD(init, alpha, target, gamma, explore, act_first, trunc_terminal), p
    if bits.startswith(KIND_TAG["UCB1"], pos):
        c, p = C.positive_rational_decode(bits, pos + 3)
        return UCB1(c), p
    if bits.startswith(KIND_TAG["Thompson"], pos):
        a, p = C.elias_gamma_decode(bits, pos + 3)
        b, p = C.elias_gamma_decode(bits, p)
        return Thompson(a, b), p
    raise C.CodeError(f"no TD/UCB1/Thompson program starts at bit {pos}")
