"""The grammar of agent programs: typed program trees, their prefix-free code, source text.

A program maps the history so far (observations, own actions, rewards, episode ends) to a
distribution over the next action. Programs are trees of typed parts; the code of a tree is the
concatenation of its parts' code words in pre-order, so ``description_bits(p)`` is exact and the
set of all programs satisfies Kraft's inequality (the code is prefix-free; tests check it by
encoding and decoding). Lengths are integers except for the choices of an action or a state,
which are uniform among n and cost log2 n bits (realised by arithmetic coding within 2 bits per
program) so that every action is a priori equally simple.

Program kinds and their kind code words (first bits of every program)::

    1     TD        a learning algorithm: value table + TD target + step size + action rule
    010   UCB1      bandit index policy (only when the observation space has one state)
    011   Thompson  Beta-Bernoulli posterior sampling (only with one state)
    0000  Constant  always the same action
    0001  Stochastic a fixed distribution over actions, probabilities in multiples of 1/m
    0010  Cyclic    a fixed sequence of actions repeated (clock: step in episode, or global step)
    0011  Reactive  a table observation -> action (default action + exceptions)

Half of the prior mass is on learning algorithms: the question we ask is whether an imitator
that watched a learner recovers the learner, so learners must not be a priori exotic; within
each kind shorter parameters are more probable, as in any universal code.

TD programs (``TD(init, step, target, gamma, explore)``)::

    init     signed rational, the initial value of every Q[s, a]        ('0' = 1 bit)
    step     '1' -> 1/n(s, a) (sample average);  '0' + unit rational alpha   (1/4: 5 bits)
    target   expression tree over r, g*max Q(s'), g*Q(s',a'), g*E_pi Q(s'), constants, +, -
    gamma    unit rational, coded only when the target has a g-term           (9/10: 9 bits)
    explore  '00' greedy | '01' eps_greedy(unit rational) | '10' softmax(temperature 2^k)
             | '11' count_bonus(c = 2^k): greedy on Q + c / sqrt(N + 1)

Probabilities (epsilon, alpha, gamma) use the unit-rational code, which holds every p/q and
makes 1/2, 1/4, 1/10, 9/10 short; scales (temperature, bonus) are powers of two with k coded
as a signed integer (a log-uniform prior over scales: 1 costs 1 bit, 2 and 1/2 3 bits).

Target expression code (pre-order)::

    00 Add(e, e)   01 r   100 g*max Q(s')   101 g*Q(s',a')   110 g*E_pi Q(s')
    1110 Sub(e, e)   1111 Const(signed rational)

so Q-learning's ``r + g*max Q(s')`` costs 7 bits, as do SARSA's and expected SARSA's. Every tree
is a linear function of its leaves, ``y = c_r r + c_1 + gamma (c_max max Q(s') + c_next Q(s',a')
+ c_exp E_pi Q(s'))`` (``LinearTarget``), which is its meaning: trees with the same coefficients
are one function (their prior weights are added). Bootstrap terms are 0 after a terminal step;
after a time-limit truncation ``Q(s',a')`` (no next action is ever taken) is replaced by its
expectation ``E_pi Q(s')`` under the program's own action rule -- the convention of the SARSA
teacher. A target with a ``Q(s',a')`` term waits for the next action: its update is applied at
the next step, before that step's own update (Sutton & Barto's SARSA order).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator, Union

from theory import codes as C

F = Fraction


class ProgramParseError(ValueError):
    """Program source text that does not parse (the message names the position and the problem)."""


# =============================================================================================
# Target expressions
# =============================================================================================
@dataclass(frozen=True)
class Leaf:
    name: str  # 'r' | 'max' | 'next' | 'exp'


@dataclass(frozen=True)
class Const:
    value: Fraction


@dataclass(frozen=True)
class Add:
    left: "Expr"
    right: "Expr"


@dataclass(frozen=True)
class Sub:
    left: "Expr"
    right: "Expr"


Expr = Union[Leaf, Const, Add, Sub]
LEAF_TAG = {"r": "01", "max": "100", "next": "101", "exp": "110"}
ADD_TAG, SUB_TAG, CONST_TAG = "00", "1110", "1111"
BOOTSTRAP = ("max", "next", "exp")
LEAF_SOURCE = {"r": "r", "max": "g*max Q(s')", "next": "g*Q(s',a')", "exp": "g*E_pi Q(s')"}


@dataclass(frozen=True)
class LinearTarget:
    """``y = r_coef r + const + gamma (max_coef max Q(s') + next_coef Q(s',a') + exp_coef E_pi Q(s'))``."""

    r: Fraction = F(0)
    const: Fraction = F(0)
    max: Fraction = F(0)
    next: Fraction = F(0)
    exp: Fraction = F(0)

    def __add__(self, o: "LinearTarget") -> "LinearTarget":
        return LinearTarget(self.r + o.r, self.const + o.const, self.max + o.max, self.next + o.next, self.exp + o.exp)

    def __neg__(self) -> "LinearTarget":
        return LinearTarget(-self.r, -self.const, -self.max, -self.next, -self.exp)

    def __sub__(self, o: "LinearTarget") -> "LinearTarget":
        return self + (-o)

    @property
    def uses_gamma(self) -> bool:
        return bool(self.max or self.next or self.exp)

    @property
    def waits_for_next_action(self) -> bool:
        return bool(self.next)

    def terminal_only(self) -> "LinearTarget":
        """The target when every step is terminal (bandits): bootstrap terms vanish."""
        return LinearTarget(self.r, self.const)

    def as_tuple(self) -> tuple[Fraction, ...]:
        return (self.r, self.const, self.max, self.next, self.exp)

    def source(self) -> str:
        parts: list[tuple[Fraction, str]] = [(self.r, "r"), (self.const, ""), (self.max, "g*max Q(s')"),
                                             (self.next, "g*Q(s',a')"), (self.exp, "g*E_pi Q(s')")]
        out = ""
        for c, name in parts:
            if c == 0:
                continue
            mag = abs(c)
            if name == "":
                term = _frac(mag)
            elif mag == 1:
                term = name
            else:
                term = f"{_frac(mag)}*{name}"
            if not out:
                out = ("-" if c < 0 else "") + term
            else:
                out += (" - " if c < 0 else " + ") + term
        return out or "0"


def linear_form(e: Expr) -> LinearTarget:
    if isinstance(e, Leaf):
        return LinearTarget(**{e.name: F(1)})
    if isinstance(e, Const):
        return LinearTarget(const=e.value)
    if isinstance(e, Add):
        return linear_form(e.left) + linear_form(e.right)
    if isinstance(e, Sub):
        return linear_form(e.left) - linear_form(e.right)
    raise TypeError(f"not a target expression: {e!r}")


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


def expr_has_gamma(e: Expr) -> bool:
    if isinstance(e, Leaf):
        return e.name in BOOTSTRAP
    if isinstance(e, (Add, Sub)):
        return expr_has_gamma(e.left) or expr_has_gamma(e.right)
    return False


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


def expr_source(e: Expr, top: bool = True) -> str:
    """Source text that ``parse_expr`` turns back into the same tree."""
    if isinstance(e, Leaf):
        return LEAF_SOURCE[e.name]
    if isinstance(e, Const):
        s = _frac(e.value)
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


def _frac(x: Fraction) -> str:
    x = F(x)
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


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
# Action rules, step sizes
# =============================================================================================
EXPLORE_TAG = {"greedy": "00", "eps_greedy": "01", "softmax": "10", "count_bonus": "11"}


@dataclass(frozen=True)
class Explore:
    kind: str                    # greedy | eps_greedy | softmax | count_bonus
    param: Fraction | None = None  # eps | temperature | bonus scale c

    def __post_init__(self) -> None:
        if self.kind not in EXPLORE_TAG:
            raise ValueError(f"unknown action rule {self.kind!r}")
        if (self.kind == "greedy") != (self.param is None):
            raise ValueError(f"{self.kind}: parameter {self.param!r}")
        if self.kind == "eps_greedy" and not 0 < self.param < 1:
            raise ValueError(f"eps_greedy epsilon must be in (0, 1), got {self.param}")
        if self.kind in ("softmax", "count_bonus"):
            try:
                C.log2_exact(self.param)
            except C.CodeError:
                raise ValueError(f"{self.kind} parameter must be a power of two (2^k), got {self.param}") from None

    def bits(self) -> int:
        if self.kind == "greedy":
            return 2
        if self.kind == "eps_greedy":
            return 2 + C.unit_rational_bits(self.param)
        return 2 + C.power_of_two_bits(self.param)

    def encode(self) -> str:
        tag = EXPLORE_TAG[self.kind]
        if self.kind == "greedy":
            return tag
        if self.kind == "eps_greedy":
            return tag + C.unit_rational_encode(self.param)
        return tag + C.power_of_two_encode(self.param)

    @staticmethod
    def decode(bits: str, pos: int) -> tuple["Explore", int]:
        tag = bits[pos:pos + 2]
        kind = {v: k for k, v in EXPLORE_TAG.items()}.get(tag)
        if kind is None:
            raise C.CodeError(f"truncated action rule at bit {pos}")
        if kind == "greedy":
            return Explore(kind), pos + 2
        if kind == "eps_greedy":
            v, p = C.unit_rational_decode(bits, pos + 2)
        else:
            v, p = C.power_of_two_decode(bits, pos + 2)
        return Explore(kind, v), p

    def source(self) -> str:
        return "greedy" if self.kind == "greedy" else f"{self.kind}({_frac(self.param)})"


# =============================================================================================
# Programs
# =============================================================================================
KIND_TAG = {"TD": "1", "UCB1": "010", "Thompson": "011", "Constant": "0000", "Stochastic": "0001",
            "Cyclic": "0010", "Reactive": "0011"}
TD_NAMES = {(F(1), F(0), F(1), F(0), F(0)): "QLearning", (F(1), F(0), F(0), F(1), F(0)): "SARSA",
            (F(1), F(0), F(0), F(0), F(1)): "ExpectedSARSA"}
CANONICAL_TREE = {"QLearning": Add(Leaf("r"), Leaf("max")), "SARSA": Add(Leaf("r"), Leaf("next")),
                  "ExpectedSARSA": Add(Leaf("r"), Leaf("exp"))}


@dataclass(frozen=True)
class TD:
    """A tabular TD learner (see the module docstring)."""

    init: Fraction
    alpha: Fraction | None   # None: 1/n(s, a)
    target: Expr
    gamma: Fraction | None   # present iff the target tree has a g-term
    explore: Explore

    def __post_init__(self) -> None:
        if self.alpha is not None and not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1) or 1/n, got {self.alpha}")
        if expr_has_gamma(self.target) != (self.gamma is not None):
            raise ValueError("gamma is given exactly when the target has a g-term")
        if self.gamma is not None and not 0 < self.gamma < 1:
            raise ValueError(f"gamma must be in (0, 1), got {self.gamma}")

    @property
    def form(self) -> LinearTarget:
        return linear_form(self.target)

    @property
    def name(self) -> str:
        return TD_NAMES.get(self.form.as_tuple(), "TD")


@dataclass(frozen=True)
class UCB1:
    c: Fraction = F(2)


@dataclass(frozen=True)
class Thompson:
    prior_alpha: int = 1
    prior_beta: int = 1


@dataclass(frozen=True)
class Constant:
    action: int


@dataclass(frozen=True)
class Stochastic:
    counts: tuple[int, ...]  # probabilities counts / sum(counts); resolution m = sum(counts)

    @property
    def probs(self) -> tuple[Fraction, ...]:
        m = sum(self.counts)
        return tuple(F(c, m) for c in self.counts)


@dataclass(frozen=True)
class Cyclic:
    clock: str                 # 'episode' (step within the episode) | 'global' (step of the run)
    seq: tuple[int, ...]


@dataclass(frozen=True)
class Reactive:
    """obs -> action: ``table[s]`` where given, else ``default``. Each state is an exception with
    probability ``2^-k`` under the code (k coded by Elias gamma), then its action is one of the
    other A-1 uniformly; so tables that differ from a constant policy in few states are short."""

    default: int
    k: int
    table: tuple[tuple[int, int], ...] = ()  # sorted (state, action != default)


Program = Union[TD, UCB1, Thompson, Constant, Stochastic, Cyclic, Reactive]


# =============================================================================================
# The grammar for one action / observation space
# =============================================================================================
@dataclass(frozen=True)
class Grammar:
    """Programs for ``n_states`` observations (Discrete) and ``n_actions`` actions.

    ``bandit``: every step ends an episode (one pull per episode); then UCB1 and Thompson are
    available, a Reactive table or an episode clock would be a constant, and the TD bootstrap
    terms always vanish. ``episodic``: episodes end (so the episode clock means something)."""

    n_states: int
    n_actions: int
    bandit: bool = False

    def __post_init__(self) -> None:
        if self.n_actions < 2:
            raise ValueError(f"a grammar needs at least 2 actions, got {self.n_actions}")
        if self.n_states < 1:
            raise ValueError(f"a grammar needs at least 1 state, got {self.n_states}")
        if self.bandit and self.n_states != 1:
            raise ValueError("the bandit grammar has one observation")

    # ---- which kinds exist -------------------------------------------------------------------
    def kinds(self) -> tuple[str, ...]:
        ks = ["TD", "Constant", "Stochastic", "Cyclic"]
        if self.n_states == 1:
            ks += ["UCB1", "Thompson"]
        else:
            ks += ["Reactive"]
        return tuple(ks)

    def clocks(self) -> tuple[str, ...]:
        return ("global",) if self.bandit else ("episode", "global")

    @property
    def action_bits(self) -> float:
        return math.log2(self.n_actions)

    # ---- description length ------------------------------------------------------------------
    def bits(self, p: Program) -> float:
        """Exact description length of ``p`` in bits (``-log2`` of its prior probability)."""
        self.check(p)
        k = len(KIND_TAG[type(p).__name__])
        if isinstance(p, TD):
            return (k + C.signed_rational_bits(p.init) + (1 if p.alpha is None else 1 + C.unit_rational_bits(p.alpha))
                    + expr_bits(p.target) + (0 if p.gamma is None else C.unit_rational_bits(p.gamma)) + p.explore.bits())
        if isinstance(p, UCB1):
            return k + C.positive_rational_bits(p.c)
        if isinstance(p, Thompson):
            return k + C.elias_gamma_bits(p.prior_alpha) + C.elias_gamma_bits(p.prior_beta)
        if isinstance(p, Constant):
            return k + self.action_bits
        if isinstance(p, Stochastic):
            m = sum(p.counts)
            return k + C.elias_gamma_bits(m - 1) + math.log2(math.comb(m + self.n_actions - 1, self.n_actions - 1))
        if isinstance(p, Cyclic):
            return k + self.cyclic_prefix_bits(len(p.seq)) - len(KIND_TAG["Cyclic"]) + len(p.seq) * self.action_bits
        if isinstance(p, Reactive):
            e = len(p.table)
            return k + self.reactive_prefix_bits(p.k) - len(KIND_TAG["Reactive"]) + self.reactive_exception_bits(p.k, e)
        raise TypeError(f"not a program: {p!r}")

    def cyclic_prefix_bits(self, period: int) -> int:
        """Kind + clock + period bits of a cyclic program (each action adds log2 A)."""
        return len(KIND_TAG["Cyclic"]) + (1 if len(self.clocks()) > 1 else 0) + C.elias_gamma_bits(period)

    def reactive_prefix_bits(self, k: int) -> float:
        """Kind + default action + exception-rate bits of a reactive table."""
        return len(KIND_TAG["Reactive"]) + self.action_bits + C.elias_gamma_bits(k)

    def reactive_exception_bits(self, k: int, n_exceptions: int) -> float:
        """Bits spent on the table body: each state says 'default' (-log2(1 - 2^-k)) or
        'exception' (k bits) + which other action (log2(A-1))."""
        rho = 2.0 ** -k
        e = n_exceptions
        return (self.n_states - e) * -math.log2(1 - rho) + e * (k + math.log2(self.n_actions - 1))

    def check(self, p: Program) -> None:
        """Raise ValueError when ``p`` is not a program of this grammar (wrong kind, action, state)."""
        kind = type(p).__name__
        if kind not in KIND_TAG:
            raise TypeError(f"not a program: {p!r}")
        if kind not in self.kinds():
            raise ValueError(f"{kind} programs are not part of the grammar for {self.n_states} state(s)"
                             + (" (bandit)" if self.bandit else ""))
        A = self.n_actions

        def act(a: int) -> None:
            if not (isinstance(a, int) and 0 <= a < A):
                raise ValueError(f"action {a!r} outside 0..{A - 1}")

        if isinstance(p, Constant):
            act(p.action)
        elif isinstance(p, Stochastic):
            if len(p.counts) != A or min(p.counts) < 0 or sum(p.counts) < 2:
                raise ValueError(f"Stochastic needs {A} non-negative counts summing to >= 2, got {p.counts}")
        elif isinstance(p, Cyclic):
            if p.clock not in self.clocks():
                raise ValueError(f"clock {p.clock!r} not available (clocks: {self.clocks()})")
            if not p.seq:
                raise ValueError("Cyclic needs a non-empty sequence")
            for a in p.seq:
                act(a)
        elif isinstance(p, Reactive):
            act(p.default)
            if p.k < 1:
                raise ValueError(f"Reactive exception rate 2^-k needs k >= 1, got {p.k}")
            states = [s for s, _ in p.table]
            if states != sorted(set(states)):
                raise ValueError("Reactive table states must be distinct and sorted")
            for s, a in p.table:
                if not 0 <= s < self.n_states:
                    raise ValueError(f"state {s} outside 0..{self.n_states - 1}")
                act(a)
                if a == p.default:
                    raise ValueError(f"state {s}: an exception must differ from the default action")
        elif isinstance(p, UCB1):
            if not p.c > 0:
                raise ValueError(f"UCB1 c must be > 0, got {p.c}")
        elif isinstance(p, Thompson):
            if p.prior_alpha < 1 or p.prior_beta < 1:
                raise ValueError("Thompson prior parameters are positive integers")

    # ---- code words --------------------------------------------------------------------------
    def encode(self, p: Program) -> str:
        """The code word of a program whose lengths are all integers (Reactive/Cyclic/Constant
        and Stochastic use uniform choices of log2 n bits and have no finite binary word here)."""
        self.check(p)
        tag = KIND_TAG[type(p).__name__]
        if isinstance(p, TD):
            return (tag + C.signed_rational_encode(p.init) + ("1" if p.alpha is None else "0" + C.unit_rational_encode(p.alpha))
                    + expr_encode(p.target) + ("" if p.gamma is None else C.unit_rational_encode(p.gamma)) + p.explore.encode())
        if isinstance(p, UCB1):
            return tag + C.positive_rational_encode(p.c)
        if isinstance(p, Thompson):
            return tag + C.elias_gamma_encode(p.prior_alpha) + C.elias_gamma_encode(p.prior_beta)
        raise ValueError(f"{type(p).__name__} uses uniform (arithmetic-coded) choices; use bits()")

    def decode(self, bits: str, pos: int = 0) -> tuple[Program, int]:
        """Inverse of ``encode`` for TD / UCB1 / Thompson programs."""
        if bits.startswith(KIND_TAG["TD"], pos):
            init, p = C.signed_rational_decode(bits, pos + 1)
            if p >= len(bits):
                raise C.CodeError("truncated program")
            if bits[p] == "1":
                alpha, p = None, p + 1
            else:
                alpha, p = C.unit_rational_decode(bits, p + 1)
            target, p = expr_decode(bits, p)
            gamma = None
            if expr_has_gamma(target):
                gamma, p = C.unit_rational_decode(bits, p)
            explore, p = Explore.decode(bits, p)
            return TD(init, alpha, target, gamma, explore), p
        if bits.startswith(KIND_TAG["UCB1"], pos):
            c, p = C.positive_rational_decode(bits, pos + 3)
            return UCB1(c), p
        if bits.startswith(KIND_TAG["Thompson"], pos):
            a, p = C.elias_gamma_decode(bits, pos + 3)
            b, p = C.elias_gamma_decode(bits, p)
            return Thompson(a, b), p
        raise C.CodeError(f"no TD/UCB1/Thompson program starts at bit {pos}")

    # ---- source ------------------------------------------------------------------------------
    def source(self, p: Program) -> str:
        return program_source(p)

    def parse(self, text: str) -> Program:
        p = parse_program(text)
        self.check(p)
        return p


def program_source(p: Program) -> str:
    """Readable source of a program; ``parse_program`` reads it back to the same program."""
    if isinstance(p, TD):
        args = [f"init={_frac(p.init)}", f"alpha={'1/n' if p.alpha is None else _frac(p.alpha)}",
                f"target={expr_source(p.target)}"]
        if p.gamma is not None:
            args.append(f"gamma={_frac(p.gamma)}")
        args.append(f"explore={p.explore.source()}")
        return f"{p.name}({', '.join(args)})"
    if isinstance(p, UCB1):
        return f"UCB1(c={_frac(p.c)})"
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


# =============================================================================================
# Parsing
# =============================================================================================
_TOKEN = re.compile(r"\s*(?:(?P<num>\d+)|(?P<name>[A-Za-z_][A-Za-z_0-9]*'?)|(?P<sym>s'|a'|[-+*/(),=\[\]{}:]))")


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
                raise ProgramParseError(f"unexpected character {text[pos:].lstrip()[:1]!r} at position {pos} in {text!r}")
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
        raise ProgramParseError(f"expected a number at position {t[2]} in {tk.text!r}, found {t[1]!r}")
    v = F(int(t[1]))
    if tk.accept("/"):
        d = tk.next()
        if d[0] != "num" or int(d[1]) == 0:
            raise ProgramParseError(f"expected a non-zero denominator at position {d[2]} in {tk.text!r}")
        v = v / int(d[1])
    return -v if neg else v


def _parse_atom(tk: _Tokens) -> Expr:
    t = tk.peek()
    if t is None:
        raise tk.error("expected a term")
    if t[1] == "(":
        tk.next()
        if tk.peek() is not None and tk.peek()[1] == "-" and tk.peek(1) is not None and tk.peek(1)[0] == "num":
            v = _parse_number(tk)
            tk.expect(")")
            return Const(v)
        e = _parse_sum(tk)
        tk.expect(")")
        return e
    if t[0] == "num":
        return Const(_parse_number(tk))
    if t[1] == "r":
        tk.next()
        return Leaf("r")
    if t[1] == "g":
        tk.next()
        tk.expect("*")
        n = tk.next()
        if n[1] == "max":
            tk.expect("Q")
            tk.expect("(")
            tk.expect("s'")
            tk.expect(")")
            return Leaf("max")
        if n[1] == "E_pi":
            tk.expect("Q")
            tk.expect("(")
            tk.expect("s'")
            tk.expect(")")
            return Leaf("exp")
        if n[1] == "Q":
            tk.expect("(")
            tk.expect("s'")
            tk.expect(",")
            tk.expect("a'")
            tk.expect(")")
            return Leaf("next")
        raise ProgramParseError(f"expected max Q(s'), Q(s',a') or E_pi Q(s') after g* at position {n[2]} in {tk.text!r}")
    raise tk.error(f"expected r, g*..., a number or '(' but found {t[1]!r}")


def _parse_sum(tk: _Tokens) -> Expr:
    e = _parse_atom(tk)
    while True:
        if tk.accept("+"):
            e = Add(e, _parse_atom(tk))
        elif tk.accept("-"):
            e = Sub(e, _parse_atom(tk))
        else:
            return e


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
        raise tk.error("unexpected text")


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
        out.append(int(t[1]))
        if tk.accept("]"):
            break
        tk.expect(",")
    _done(tk)
    return tuple(out)


def _explore_arg(tk: _Tokens) -> Explore:
    t = tk.next()
    if t[1] == "greedy":
        _done(tk)
        return Explore("greedy")
    if t[1] not in ("eps_greedy", "softmax", "count_bonus"):
        raise ProgramParseError(f"unknown action rule {t[1]!r} at position {t[2]} (greedy, eps_greedy(e), softmax(t), count_bonus(c))")
    tk.expect("(")
    v = _parse_number(tk)
    tk.expect(")")
    _done(tk)
    try:
        return Explore(t[1], v)
    except ValueError as e:
        raise ProgramParseError(f"{e} in {tk.text!r}") from None


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
            kw = _parse_kwargs(tk, ("init", "alpha", "target", "gamma", "explore"), name)
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
            explore = _explore_arg(_sub(tk, kw["explore"]))
            return TD(init, alpha, target, gamma, explore)
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
            vals = [int(_parse_number(tk))]
            while tk.accept(","):
                vals.append(int(_parse_number(tk)))
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
                    st = _parse_number(s)
                    s.expect(":")
                    ac = _parse_number(s)
                    table.append((int(st), int(ac)))
                    if s.accept("}"):
                        break
                    s.expect(",")
            _done(s)
            return Reactive(int(d), int(k), tuple(sorted(table)))
    except ValueError as e:
        if isinstance(e, ProgramParseError):
            raise
        raise ProgramParseError(f"{e} in {text!r}") from None
    raise ProgramParseError(f"unknown program kind {name!r} in {text!r} (kinds: TD, QLearning, SARSA, "
                            "ExpectedSARSA, UCB1, Thompson, Constant, Stochastic, Cyclic, Reactive)")

