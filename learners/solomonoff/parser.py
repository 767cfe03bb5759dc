"""Reading program source text (as ``printer.program_source`` writes it) back into trees.

Numbers are integers, exact rationals ``p/q`` or decimals: a decimal literal such as ``0.5``
is read as the exact rational it denotes (``1/2``; ``0.1`` is ``1/10``, not the nearest binary
float), since every parameter of the grammar is rational.
"""
from __future__ import annotations

import re
from fractions import Fraction

from learners.solomonoff.printer import expr_source
from learners.solomonoff.syntax import (CANONICAL_TREE, TD, TD_NAMES, UCB1, Add, Const, Constant, Cyclic, Explore, Expr, Schedule,
                                        Leaf, Program, Reactive, SCHEDULE_SHAPES, Stochastic, Sub, Thompson, expr_has_gamma,
                                        linear_form)

F = Fraction


class ProgramParseError(ValueError):
    """Program source text that does not parse (the message names the position and the problem)."""


NUMBER_FORMS = "numbers are written as integers (3), fractions (1/4) or decimals (0.25)"

_TOKEN = re.compile(r"\s*(?:(?P<num>\d*\.\d+|\d+\.?)|(?P<name>[A-Za-z_][A-Za-z_0-9]*'?)|(?P<sym>s'|a'|[-+*/(),=\[\]{}:]))")


class _Tokens:
    def __init__(self, text: str):
        self.text = text
        self.toks: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                c = text[pos:].lstrip()[:1]
                hint = f" ({NUMBER_FORMS})" if c in ".eE" else ""
                raise ProgramParseError(f"unexpected character {c!r} at position {pos} in {text!r}{hint}")
            kind = m.lastgroup
            val = m.group(kind)
            self.toks.append((kind, val, m.start(kind)))
            pos = m.end()
        self.i = 0

    def peek(self, k: int = 0) -> tuple[str, str, int] | None:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def next(self) -> tuple[str, str, int]:
        t = self.peek()
        if t is None:
            raise ProgramParseError(f"unexpected end of {self.text!r}")
        self.i += 1
        return t

    def expect(self, val: str) -> None:
        t = self.next()
        if t[1] != val:
            raise ProgramParseError(f"expected {val!r} at position {t[2]} in {self.text!r}, found {t[1]!r}")

    def accept(self, val: str) -> bool:
        t = self.peek()
        if t is not None and t[1] == val:
            self.i += 1
            return True
        return False

    def error(self, msg: str) -> ProgramParseError:
        t = self.peek()
        where = f"position {t[2]}" if t else "the end"
        return ProgramParseError(f"{msg} at {where} in {self.text!r}")


def _parse_number(tk: _Tokens) -> Fraction:
    neg = tk.accept("-")
    t = tk.next()
    if t[0] != "num":
        raise ProgramParseError(f"expected a number at position {t[2]} in {tk.text!r}, found {t[1]!r} ({NUMBER_FORMS})")
    v = F(t[1])
    if tk.accept("/"):
        d = tk.next()
        if d[0] != "num" or F(d[1]) == 0:
            raise ProgramParseError(f"expected a non-zero denominator at position {d[2]} in {tk.text!r} ({NUMBER_FORMS})")
        v = v / F(d[1])
    return -v if neg else v


def _integer(v: Fraction, what: str, tk: _Tokens) -> int:
    if v.denominator != 1:
        raise ProgramParseError(f"{what} must be an integer, got {v} in {tk.text!r}")
    return int(v)


#: How deep a target expression may nest (parentheses, or terms of one sum: ``a + b + c`` is a
#: tree of depth 3). Real targets have depth < 10; the limit keeps the parser, and the recursive
#: walks of the tree after it (``linear_form``, ``expr_source``), far from Python's recursion limit.
MAX_EXPR_DEPTH = 100


def _too_deep(tk: _Tokens) -> ProgramParseError:
    return tk.error(f"expression nested deeper than {MAX_EXPR_DEPTH} levels (the parser's limit)")


def _parse_atom(tk: _Tokens, nest: int = 0) -> tuple[Expr, int]:
    """One term and the depth of its tree; ``nest`` is the number of enclosing parentheses."""
    t = tk.peek()
    if t is None:
        raise tk.error("expected a term")
    if t[1] == "(":
        if nest >= MAX_EXPR_DEPTH:
            raise _too_deep(tk)
        tk.next()
        if tk.peek() is not None and tk.peek()[1] == "-" and tk.peek(1) is not None and tk.peek(1)[0] == "num":
            v = _parse_number(tk)
            tk.expect(")")
            return Const(v), 1
        e = _parse_sum_depth(tk, nest + 1)
        tk.expect(")")
        return e
    if t[0] == "num":
        return Const(_parse_number(tk)), 1
    if t[1] == "r":
        tk.next()
        return Leaf("r"), 1
    if t[1] == "g":
        tk.next()
        tk.expect("*")
        n = tk.next()
        leaf = {"max": ("max", ("Q", "(", "s'", ")")), "E_pi": ("exp", ("Q", "(", "s'", ")")),
                "Q": ("next", ("(", "s'", ",", "a'", ")"))}.get(n[1])
        if leaf is not None:
            for v in leaf[1]:
                tk.expect(v)
            return Leaf(leaf[0]), 1
        raise ProgramParseError(f"expected max Q(s'), Q(s',a') or E_pi Q(s') after g* at position {n[2]} in {tk.text!r}")
    raise tk.error(f"expected r, g*..., a number or '(' but found {t[1]!r}")


def _parse_sum_depth(tk: _Tokens, nest: int = 0) -> tuple[Expr, int]:
    e, depth = _parse_atom(tk, nest)
    while True:
        if tk.accept("+"):
            op = Add
        elif tk.accept("-"):
            op = Sub
        else:
            return e, depth
        right, d = _parse_atom(tk, nest)
        e, depth = op(e, right), max(depth, d) + 1
        if depth > MAX_EXPR_DEPTH:
            raise _too_deep(tk)


def _parse_sum(tk: _Tokens) -> Expr:
    return _parse_sum_depth(tk)[0]


def parse_expr(text: str) -> Expr:
    tk = _Tokens(text)
    e = _parse_sum(tk)
    if tk.peek() is not None:
        raise tk.error("unexpected text after the expression")
    return e


def _parse_kwargs(tk: _Tokens, allowed: tuple[str, ...], name: str) -> dict[str, _Tokens | tuple[int, int]]:
    """Split ``k=value, ...`` at depth 0; return token ranges per key."""
    out: dict[str, tuple[int, int]] = {}
    tk.expect("(")
    if tk.accept(")"):
        return out
    while True:
        k = tk.next()
        if k[0] != "name" or k[1] not in allowed:
            raise ProgramParseError(f"{name}: unknown argument {k[1]!r} at position {k[2]} (arguments: {', '.join(allowed)})")
        if k[1] in out:
            raise ProgramParseError(f"{name}: argument {k[1]!r} given twice")
        tk.expect("=")
        start, depth = tk.i, 0
        while True:
            t = tk.peek()
            if t is None:
                raise ProgramParseError(f"{name}: unclosed argument list in {tk.text!r}")
            if t[1] in "([{":
                depth += 1
            elif t[1] in ")]}":
                if depth == 0:
                    break
                depth -= 1
            elif t[1] == "," and depth == 0:
                break
            tk.next()
        out[k[1]] = (start, tk.i)
        if tk.accept(")"):
            return out
        tk.expect(",")


def _sub(tk: _Tokens, rng: tuple[int, int]) -> _Tokens:
    s = _Tokens.__new__(_Tokens)
    s.text, s.toks, s.i = tk.text, tk.toks[rng[0]:rng[1]], 0
    if not s.toks:
        raise ProgramParseError(f"empty argument in {tk.text!r}")
    return s


def _done(tk: _Tokens) -> None:
    if tk.peek() is not None:
        after_number = tk.i > 0 and tk.toks[tk.i - 1][0] == "num"
        raise tk.error(f"unexpected text{f' after a number ({NUMBER_FORMS})' if after_number else ''}")


def _number_arg(tk: _Tokens) -> Fraction:
    v = _parse_number(tk)
    _done(tk)
    return v


def _int_list(tk: _Tokens) -> tuple[int, ...]:
    tk.expect("[")
    out = []
    if tk.accept("]"):
        return ()
    while True:
        t = tk.next()
        if t[0] != "num":
            raise ProgramParseError(f"expected an integer at position {t[2]} in {tk.text!r}")
        out.append(_integer(F(t[1]), "an action of the sequence", tk))
        if tk.accept("]"):
            break
        tk.expect(",")
    _done(tk)
    return tuple(out)


def _explore_arg(tk: _Tokens, ties: str = "uniform", schedule: Schedule | None = None) -> Explore:
    t = tk.next()
    if t[1] == "greedy":
        _done(tk)
        try:
            return Explore("greedy", ties=ties, schedule=schedule)
        except ValueError as e:
            raise ProgramParseError(f"{e} in {tk.text!r}") from None
    if t[1] not in ("eps_greedy", "softmax", "count_bonus"):
        raise ProgramParseError(f"unknown action rule {t[1]!r} at position {t[2]} (greedy, eps_greedy(e), softmax(t), count_bonus(c))")
    tk.expect("(")
    v = _parse_number(tk)
    tk.expect(")")
    _done(tk)
    try:
        return Explore(t[1], v, ties, schedule)
    except ValueError as e:
        raise ProgramParseError(f"{e} in {tk.text!r}") from None


DECAYS = tuple(f"{shape}_per_{per}" for shape in SCHEDULE_SHAPES for per in ("episode", "step"))


def _schedule_arg(tk: _Tokens, kw: dict, name: str) -> Schedule | None:
    """``eps_decay=exp_per_episode(1/200)`` (eps *= 1 - 1/200 after each episode; also
    ``exp_per_step``, ``linear_per_episode``, ``linear_per_step``: eps -= rate;
    ``exp_to_floor_per_episode`` / ``_per_step``: floor + (start - floor) exp(-rate k)) and
    ``eps_floor=1/10`` (default 0)."""
    if "eps_decay" not in kw:
        if "eps_floor" in kw:
            raise ProgramParseError(f"{name}: eps_floor needs eps_decay in {tk.text!r}")
        return None
    d = _sub(tk, kw["eps_decay"])
    t = d.next()
    if t[1] not in DECAYS:
        raise ProgramParseError(f"{name}: eps_decay is one of {', '.join(f'{x}(1/n)' for x in DECAYS)} in {tk.text!r}")
    d.expect("(")
    rate = _parse_number(d)
    d.expect(")")
    _done(d)
    floor = _number_arg(_sub(tk, kw["eps_floor"])) if "eps_floor" in kw else F(0)
    shape, per = t[1].split("_per_")
    return Schedule(per, shape, rate, floor)


def _flag_arg(tk: _Tokens, kw: dict, key: str, choices: tuple[str, str], name: str) -> str:
    """A variant's argument (one of two words; the first, the plain grammar's, when absent)."""
    if key not in kw:
        return choices[0]
    o = _sub(tk, kw[key]).toks
    if len(o) != 1 or o[0][1] not in choices:
        raise ProgramParseError(f"{name}: {key} is {choices[0]} or {choices[1]} in {tk.text!r}")
    return o[0][1]


def parse_program(text: str) -> Program:
    """Parse program source (as printed by ``program_source``). Raises ProgramParseError.

    TD programs may be written ``QLearning(...)``, ``SARSA(...)``, ``ExpectedSARSA(...)`` (the
    target may then be omitted) or ``TD(..., target=...)``; ``alpha=1/n`` is the sample average."""
    if not isinstance(text, str) or not text.strip():
        raise ProgramParseError(f"empty program text {text!r}")
    tk = _Tokens(text)
    head = tk.next()
    name = head[1]
    try:
        if name in ("TD", "QLearning", "SARSA", "ExpectedSARSA"):
            kw = _parse_kwargs(tk, ("init", "alpha", "target", "gamma", "explore", "order", "truncation", "ties",
                                    "eps_decay", "eps_floor"), name)
            _done(tk)
            for req in ("init", "alpha", "explore"):
                if req not in kw:
                    raise ProgramParseError(f"{name}: missing argument {req!r} in {text!r}")
            init = _number_arg(_sub(tk, kw["init"]))
            a = _sub(tk, kw["alpha"])
            if len(a.toks) == 3 and a.toks[0][1] == "1" and a.toks[2][1] == "n":
                alpha = None
            else:
                alpha = _number_arg(a)
            if "target" in kw:
                s = _sub(tk, kw["target"])
                target = _parse_sum(s)
                _done(s)
            elif name == "TD":
                raise ProgramParseError(f"TD: missing argument 'target' in {text!r}")
            else:
                target = CANONICAL_TREE[name]
            if name != "TD" and TD_NAMES.get(linear_form(target).as_tuple()) != name:
                raise ProgramParseError(f"{name}: target {expr_source(target)!r} is not {name}'s target")
            gamma = _number_arg(_sub(tk, kw["gamma"])) if "gamma" in kw else None
            if expr_has_gamma(target) and gamma is None:
                raise ProgramParseError(f"{name}: the target has a g-term, so gamma is required in {text!r}")
            if not expr_has_gamma(target) and gamma is not None:
                raise ProgramParseError(f"{name}: gamma given but the target has no g-term in {text!r}")
            ties = _flag_arg(tk, kw, "ties", ("uniform", "first"), name)
            explore = _explore_arg(_sub(tk, kw["explore"]), ties, _schedule_arg(tk, kw, name))
            act_first = _flag_arg(tk, kw, "order", ("update_first", "act_first"), name) == "act_first"
            trunc_terminal = _flag_arg(tk, kw, "truncation", ("bootstrap", "terminal"), name) == "terminal"
            return TD(init, alpha, target, gamma, explore, act_first, trunc_terminal)
        if name == "UCB1":
            kw = _parse_kwargs(tk, ("c",), name)
            _done(tk)
            return UCB1(_number_arg(_sub(tk, kw["c"])) if "c" in kw else F(2))
        if name == "Thompson":
            kw = _parse_kwargs(tk, ("alpha", "beta"), name)
            _done(tk)
            a = _number_arg(_sub(tk, kw["alpha"])) if "alpha" in kw else F(1)
            b = _number_arg(_sub(tk, kw["beta"])) if "beta" in kw else F(1)
            if a.denominator != 1 or b.denominator != 1:
                raise ProgramParseError(f"Thompson prior parameters are positive integers in {text!r}")
            return Thompson(int(a), int(b))
        if name in ("Constant", "Stochastic"):
            tk.expect("(")
            vals = [_integer(_parse_number(tk), f"{name}'s argument", tk)]
            while tk.accept(","):
                vals.append(_integer(_parse_number(tk), f"{name}'s argument", tk))
            tk.expect(")")
            _done(tk)
            if name == "Constant":
                if len(vals) != 1:
                    raise ProgramParseError(f"Constant takes one action in {text!r}")
                return Constant(vals[0])
            return Stochastic(tuple(vals))
        if name == "Cyclic":
            kw = _parse_kwargs(tk, ("clock", "seq"), name)
            _done(tk)
            c = _sub(tk, kw["clock"]).toks
            if len(c) != 1 or c[0][1] not in ("episode", "global"):
                raise ProgramParseError(f"Cyclic clock must be episode or global in {text!r}")
            return Cyclic(c[0][1], _int_list(_sub(tk, kw["seq"])))
        if name == "Reactive":
            kw = _parse_kwargs(tk, ("default", "k", "table"), name)
            _done(tk)
            d = _number_arg(_sub(tk, kw["default"]))
            k = _number_arg(_sub(tk, kw["k"]))
            s = _sub(tk, kw["table"])
            s.expect("{")
            table = []
            if not s.accept("}"):
                while True:
                    st = _integer(_parse_number(s), "a state", s)
                    s.expect(":")
                    ac = _integer(_parse_number(s), "an action", s)
                    table.append((st, ac))
                    if s.accept("}"):
                        break
                    s.expect(",")
            _done(s)
            return Reactive(_integer(d, "Reactive default", tk), _integer(k, "Reactive k", tk), tuple(sorted(table)))
    except ValueError as e:
        if isinstance(e, ProgramParseError):
            raise
        raise ProgramParseError(f"{e} in {text!r}") from None
    raise ProgramParseError(f"unknown program kind {name!r} in {text!r} (kinds: TD, QLearning, SARSA, "
                            "ExpectedSARSA, UCB1, Thompson, Constant, Stochastic, Cyclic, Reactive)")

