"""The syntax of agent programs: typed program trees (what a program *is*; its code is in
``prefix_code``, its text in ``printer`` / ``parser``, the grammar of one space in ``grammar``).

A program maps the history so far (observations, own actions, rewards, episode ends) to a
distribution over the next action. Kinds: ``TD`` (a tabular learning algorithm), ``UCB1`` and
``Thompson`` (bandit programs), ``Constant``, ``Stochastic``, ``Cyclic`` and ``Reactive``.

A TD program ``TD(init, alpha, target, gamma, explore)`` starts every ``Q[s, a]`` at ``init``,
steps by ``alpha`` (``None``: the sample average ``1/n(s, a)``) towards the target, an
expression tree over ``r``, ``g*max Q(s')``, ``g*Q(s',a')``, ``g*E_pi Q(s')``, constants, ``+``
and ``-``, and acts by ``explore``. Every tree is a linear function of its leaves,
``y = c_r r + c_1 + gamma (c_max max Q(s') + c_next Q(s',a') + c_exp E_pi Q(s'))``
(``LinearTarget``), which is its meaning: trees with the same coefficients are one function.
Bootstrap terms are 0 after a terminal step; after a time-limit truncation ``Q(s',a')`` (no next
action is ever taken) is replaced by its expectation ``E_pi Q(s')`` under the program's own
action rule -- the convention of the SARSA teacher. A target with a ``Q(s',a')`` term waits for
the next action: its update is applied at the next step, before that step's own update (Sutton
& Barto's SARSA order). ``act_first`` gives any other target that order too: the next action is
drawn from the values before the update (a variant of the order of acting and updating found in
public code; it differs from the textbook order when the next state is the current one).
An action rule (``Explore``) may break greedy ties to the first index (``ties="first"``, as
``np.argmax`` does) and let epsilon decay (``Schedule``), the grammar's ``ties`` and
``eps_schedule`` variants.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Union

import numpy as np

from theory import codes as C

F = Fraction


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
BOOTSTRAP = ("max", "next", "exp")


@dataclass(frozen=True)
class LinearTarget:
    """``y = r_coef r + const + gamma (max_coef max Q(s') + next_coef Q(s',a') + exp_coef E_pi Q(s'))``."""

    r: Fraction = F(0)
    const: Fraction = F(0)
    max: Fraction = F(0)
    next: Fraction = F(0)
    exp: Fraction = F(0)
    #: the update of (s, a) waits until the next action is drawn (from the values before it), as
    #: SARSA's must; for other targets a variant of the order of acting and updating
    act_first: bool = False
    #: a time-limit truncation is treated as a terminal step (no bootstrap), as code written
    #: against ``done = terminated or truncated`` does
    trunc_terminal: bool = False

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
        return bool(self.next) or self.act_first

    def terminal_only(self) -> "LinearTarget":
        """The target when every step is terminal (bandits): bootstrap terms vanish."""
        return LinearTarget(self.r, self.const)

    def as_tuple(self) -> tuple[Fraction, ...]:
        return (self.r, self.const, self.max, self.next, self.exp)


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



def expr_has_gamma(e: Expr) -> bool:
    if isinstance(e, Leaf):
        return e.name in BOOTSTRAP
    if isinstance(e, (Add, Sub)):
        return expr_has_gamma(e.left) or expr_has_gamma(e.right)
    return False



# =============================================================================================
# Action rules
# =============================================================================================
EXPLORE_KINDS = ("greedy", "eps_greedy", "softmax", "count_bonus")
TIES = ("uniform", "first")
SCHEDULE_PER = ("episode", "step")
SCHEDULE_SHAPES = ("exp", "linear", "exp_to_floor")


@dataclass(frozen=True)
class Schedule:
    """How epsilon decays: after every ``per`` ('episode': each episode end; 'step': each step),
    ``eps <- max(floor, eps * (1 - rate))`` ('exp') or ``max(floor, eps - rate)`` ('linear'), in
    that order of float operations (as ``epsilon = max(final_epsilon, epsilon - decay)`` is
    written), or, after k decays, ``floor + (start - floor) * exp(-rate * k)`` ('exp_to_floor',
    as ``min_epsilon + (max_epsilon - min_epsilon) * np.exp(-decay_rate * episode)`` is). The
    action at step t is drawn with epsilon after the decays of the steps (or episodes) before t;
    an update uses the epsilon its step's action was drawn with."""

    per: str
    shape: str
    rate: Fraction     # 1/n, n >= 2
    floor: Fraction = F(0)

    def __post_init__(self) -> None:
        if self.per not in SCHEDULE_PER or self.shape not in SCHEDULE_SHAPES:
            raise ValueError(f"epsilon schedule per {self.per!r} ({SCHEDULE_PER}), shape {self.shape!r} ({SCHEDULE_SHAPES})")
        if not (0 < self.rate < 1 and self.rate.numerator == 1):
            raise ValueError(f"epsilon decay rate must be 1/n with n >= 2, got {self.rate}")
        if not (0 <= self.floor < 1 and (self.floor == 0 or self.floor.numerator == 1)):
            raise ValueError(f"epsilon floor must be 0 or 1/n with n >= 2, got {self.floor}")

    def decay(self, eps: float, start: float, k: int) -> float:
        """Epsilon after the k-th decay (``eps``: after the one before), in the float operations
        the engines and the reference teachers use."""
        if self.shape == "exp_to_floor":
            return float(self.floor) + (start - float(self.floor)) * float(np.exp(-float(self.rate) * k))
        e = eps * float(1 - self.rate) if self.shape == "exp" else eps - float(self.rate)
        return max(float(self.floor), e)


@dataclass(frozen=True)
class Explore:
    kind: str                    # greedy | eps_greedy | softmax | count_bonus
    param: Fraction | None = None  # eps (the start value with a schedule) | temperature | bonus scale c
    ties: str = "uniform"        # argmax ties: shared uniformly, or all to the first index (np.argmax)
    schedule: Schedule | None = None   # eps_greedy only: how epsilon decays (None: constant)

    def __post_init__(self) -> None:
        if self.kind not in EXPLORE_KINDS:
            raise ValueError(f"unknown action rule {self.kind!r}")
        if (self.kind == "greedy") != (self.param is None):
            raise ValueError(f"{self.kind}: parameter {self.param!r}")
        if self.ties not in TIES:
            raise ValueError(f"ties must be one of {TIES}, got {self.ties!r}")
        if self.ties == "first" and self.kind not in ("greedy", "eps_greedy"):
            raise ValueError("first-index tie breaking is a variant of greedy and eps_greedy only")
        if self.schedule is not None:
            if self.kind != "eps_greedy":
                raise ValueError("an epsilon schedule belongs to eps_greedy")
            # any floor with any start (a floor above the start is reached at the first decay):
            # every code word is a program, so the code's structure alone counts the programs
            if not 0 < self.param <= 1:
                raise ValueError(f"a scheduled epsilon starts in (0, 1], got {self.param}")
        elif self.kind == "eps_greedy" and not 0 < self.param < 1:
            raise ValueError(f"eps_greedy epsilon must be in (0, 1), got {self.param}")
        if self.kind in ("softmax", "count_bonus"):
            try:
                C.log2_exact(self.param)
            except C.CodeError:
                raise ValueError(f"{self.kind} parameter must be a power of two (2^k), got {self.param}") from None


# =============================================================================================
# Programs
# =============================================================================================
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
    act_first: bool = False  # draw the next action before updating (targets without Q(s',a'))
    trunc_terminal: bool = False  # no bootstrap after a time-limit truncation (targets with a g-term)

    def __post_init__(self) -> None:
        if self.act_first and linear_form(self.target).next:
            raise ValueError("a target with Q(s',a') always draws the next action first: act_first is for other targets")
        if self.trunc_terminal and not expr_has_gamma(self.target):
            raise ValueError("truncation=terminal needs a target with a g-term (without one nothing is bootstrapped)")
        if self.alpha is not None and not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1) or 1/n, got {self.alpha}")
        if expr_has_gamma(self.target) != (self.gamma is not None):
            raise ValueError("gamma is given exactly when the target has a g-term")
        if self.gamma is not None and not 0 < self.gamma < 1:
            raise ValueError(f"gamma must be in (0, 1), got {self.gamma}")

    @property
    def form(self) -> LinearTarget:
        return replace(linear_form(self.target), act_first=self.act_first, trunc_terminal=self.trunc_terminal)

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
