"""Program source text: ``program_source`` prints a program so that ``parser.parse_program``
reads it back to the same program."""
from __future__ import annotations

from fractions import Fraction

from learners.solomonoff.syntax import (TD, UCB1, Add, Const, Constant, Cyclic, Explore, Expr, Leaf, LinearTarget, Program,
                                        Reactive, Stochastic, Sub, Thompson)

LEAF_SOURCE = {"r": "r", "max": "g*max Q(s')", "next": "g*Q(s',a')", "exp": "g*E_pi Q(s')"}


def frac_source(x: Fraction) -> str:
    """``p/q`` (or ``p``): the number syntax the parser reads."""
    x = Fraction(x)
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


def expr_source(e: Expr, top: bool = True) -> str:
    """Source text that ``parse_expr`` turns back into the same tree."""
    if isinstance(e, Leaf):
        return LEAF_SOURCE[e.name]
    if isinstance(e, Const):
        s = frac_source(e.value)
        return f"({s})" if e.value < 0 else s
    if isinstance(e, Add):
        right = expr_source(e.right, False)
        if isinstance(e.right, (Add, Sub)):
            right = f"({right})"
        return f"{expr_source(e.left, False)} + {right}"
    if isinstance(e, Sub):
        right = expr_source(e.right, False)
        if isinstance(e.right, (Add, Sub)):
            right = f"({right})"
        return f"{expr_source(e.left, False)} - {right}"
    raise TypeError(f"not a target expression: {e!r}")



def target_source(t: LinearTarget) -> str:
    """The linear form as text, e.g. ``r + g*max Q(s')``."""
    parts: list[tuple[Fraction, str]] = [(t.r, "r"), (t.const, ""), (t.max, "g*max Q(s')"),
                                         (t.next, "g*Q(s',a')"), (t.exp, "g*E_pi Q(s')")]
    out = ""
    for c, name in parts:
        if c == 0:
            continue
        mag = abs(c)
        if name == "":
            term = frac_source(mag)
        elif mag == 1:
            term = name
        else:
            term = f"{frac_source(mag)}*{name}"
        if not out:
            out = ("-" if c < 0 else "") + term
        else:
            out += (" - " if c < 0 else " + ") + term
    return out or "0"


def explore_source(e: Explore) -> str:
    return "greedy" if e.kind == "greedy" else f"{e.kind}({frac_source(e.param)})"


def program_source(p: Program) -> str:
    """Readable source of a program; ``parse_program`` reads it back to the same program."""
    if isinstance(p, TD):
        args = [f"init={frac_source(p.init)}", f"alpha={'1/n' if p.alpha is None else frac_source(p.alpha)}",
                f"target={expr_source(p.target)}"]
        if p.gamma is not None:
            args.append(f"gamma={frac_source(p.gamma)}")
        args.append(f"explore={explore_source(p.explore)}")
        if p.act_first:
            args.append("order=act_first")
        if p.trunc_terminal:
            args.append("truncation=terminal")
        if p.explore.ties != "uniform":
            args.append(f"ties={p.explore.ties}")
        sch = p.explore.schedule
        if sch is not None:
            args.append(f"eps_decay={sch.shape}_per_{sch.per}({frac_source(sch.rate)})")
            if sch.floor:
                args.append(f"eps_floor={frac_source(sch.floor)}")
        return f"{p.name}({', '.join(args)})"
    if isinstance(p, UCB1):
        return f"UCB1(c={frac_source(p.c)})"
    if isinstance(p, Thompson):
        return f"Thompson(alpha={p.prior_alpha}, beta={p.prior_beta})"
    if isinstance(p, Constant):
        return f"Constant({p.action})"
    if isinstance(p, Stochastic):
        return f"Stochastic({', '.join(str(c) for c in p.counts)})"
    if isinstance(p, Cyclic):
        return f"Cyclic(clock={p.clock}, seq=[{', '.join(map(str, p.seq))}])"
    if isinstance(p, Reactive):
        tab = ", ".join(f"{s}: {a}" for s, a in p.table)
        return f"Reactive(default={p.default}, k={p.k}, table={{{tab}}})"
    raise TypeError(f"not a program: {p!r}")
