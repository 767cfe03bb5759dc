"""The mixture's bounds as sympy expressions in the prior bits and the smoothing term.

The same bounds ``theory.bounds`` evaluates numerically, written once as expressions so that
they can be read, differentiated, expanded in the smoothing eps and solved (e.g. for the number
of steps after which the smoothing term outweighs the prior bits). Symbols (all in bits unless
said otherwise):

* ``L``      -- the program's cumulative log-loss after n steps (smoothed or raw, see below);
* ``l``      -- the program's description length (prior bits);
* ``log2Z``  -- log2 of the normaliser ``Z = sum_p 2^-l(p)`` over the enumerated programs (<= 0);
* ``n``      -- steps (predicted actions);
* ``eps``    -- the smoothing: the mixture runs ``(1 - eps) p + eps / A``;
* ``A``      -- actions.

Bounds (every sequence): ``L_mix <= L_{p_eps} + l + log2Z`` (1), and against the raw program
``L_mix <= L_p + l + log2Z + n log2(1 / (1 - eps))`` (2); in expectation over a teacher mu in the
class, ``E sum KL(mu || xi) <= l + log2Z + n log2(1 / (1 - eps))`` (3).
"""
from __future__ import annotations

from typing import Iterable, Mapping

import sympy as sp

L, l, log2Z, eps = sp.symbols("L l log2Z epsilon", real=True)
n, A = sp.symbols("n A", positive=True, integer=True)


def smoothing_cost() -> sp.Expr:
    """Worst-case extra log-loss of the smoothed program over the raw one: ``n log2(1/(1-eps))``."""
    return n * sp.log(1 / (1 - eps), 2)


def per_sequence_bound(smoothed: bool = True) -> sp.Expr:
    """Bound (1) with ``L`` the smoothed program's loss (``smoothed=True``), or bound (2) with
    ``L`` the raw program's loss plus the smoothing cost."""
    b = L + l + log2Z
    return b if smoothed else b + smoothing_cost()


def expected_kl_bound() -> sp.Expr:
    """Bound (3) on the summed expected KL from the teacher to the mixture over n steps."""
    return l + log2Z + smoothing_cost()


def mean_kl_bound() -> sp.Expr:
    """Bound (3) per step: ``(l + log2Z) / n + log2(1/(1-eps))`` -- 1/n decay to the smoothing floor."""
    return sp.expand(expected_kl_bound() / n)


def smoothed_deterministic_loss() -> sp.Expr:
    """Loss of a smoothed deterministic program that predicts every teacher action: each step
    costs ``-log2(1 - eps + eps/A)``. Put in bound (1) it is tighter than bound (2) with L = 0."""
    return -n * sp.log(1 - eps + eps / A, 2)


def log2_normaliser(bits: Iterable) -> sp.Expr:
    """Exact ``log2 sum_p 2^-l(p)`` for given description lengths (integers stay exact)."""
    b = [sp.nsimplify(x) for x in bits]
    if not b:
        raise ValueError("log2_normaliser of an empty set of programs")
    return sp.log(sp.Add(*[sp.Integer(2) ** (-x) for x in b]), 2)


def smoothing_cost_series(order: int = 3) -> sp.Expr:
    """The smoothing cost expanded in small eps: ``n (eps + eps^2/2 + ...) / ln 2``."""
    return sp.series(smoothing_cost(), eps, 0, order).removeO()


def breakeven_steps() -> sp.Expr:
    """Steps after which the smoothing cost equals the prior bits ``l + log2Z``: beyond them the
    smoothing term, not the prior, dominates bounds (2) and (3)."""
    m = sp.Symbol("m", positive=True)
    sol = sp.solve(sp.Eq(smoothing_cost().subs(n, m), l + log2Z), m)
    return sol[0]


SYMBOLS = {"L": L, "l": l, "log2Z": log2Z, "n": n, "eps": eps, "A": A}


def evaluate(expr: sp.Expr, values: Mapping[str, float]) -> float:
    """A bound's value at numbers given by symbol name (``L``, ``l``, ``log2Z``, ``n``, ``eps``, ``A``)."""
    unknown = set(values) - set(SYMBOLS)
    if unknown:
        raise ValueError(f"unknown symbol(s) {sorted(unknown)}; known: {sorted(SYMBOLS)}")
    missing = {str(s) for s in expr.free_symbols} - {str(SYMBOLS[k]) for k in values}
    if missing:
        raise ValueError(f"no value for symbol(s) {sorted(missing)}")
    return float(expr.subs({SYMBOLS[k]: sp.Float(v, 30) for k, v in values.items()}).evalf(30))


__all__ = [
    "L", "l", "log2Z", "n", "eps", "A", "SYMBOLS", "smoothing_cost", "per_sequence_bound", "expected_kl_bound",
    "mean_kl_bound", "smoothed_deterministic_loss", "log2_normaliser", "smoothing_cost_series", "breakeven_steps",
    "evaluate",
]
