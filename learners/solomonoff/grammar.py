"""The grammar of agent programs for one observation / action space (``Grammar``), and its code.

Where each part lives: the trees in ``syntax``, their code words in ``prefix_code``, source
text in ``printer`` and ``parser``; ``Grammar`` says which kinds exist for a space and gives
every program its exact description length.

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

Implementation variants (``Grammar.variants``, opt-in) and the public code they follow. How
tabular TD learners are written where people learn them (surveyed: Sutton & Barto's pseudo-code
and ShangtongZhang's code for the book; the gymnasium "Training an agent" Blackjack tutorial;
dennybritz/reinforcement-learning's ``make_epsilon_greedy_policy``; rlcode, yrlu, rasbt's
machine-learning-book grid-world agent; FrozenLake / CliffWalking tutorials and gists):

* order of acting and updating -- the book's Q-learning and most tutorials act, step, update,
  so the next action comes from the updated values (the plain grammar); SARSA everywhere, and
  expected SARSA inside a SARSA loop (the book's cliff-walking code), draw the next action
  *before* the update: ``act_first`` (one bit, '1', against '0');
* what the last step of a time-limited episode bootstraps on -- the gymnasium tutorials write
  ``(not terminated)``: bootstrap (the plain grammar: max, or the expectation for ``Q(s',a')``);
  code written against ``done = terminated or truncated`` bootstraps on nothing:
  ``truncation``;
* ties between maximal values -- ``np.argmax`` (first index) in the gymnasium tutorial,
  dennybritz's policies and most FrozenLake code; uniform among the maxima in ShangtongZhang's
  code and rasbt's agent (the plain grammar): ``ties`` (greedy and eps_greedy);
* epsilon schedules -- constant (the book, dennybritz); linear per episode to a floor (the
  gymnasium tutorial: ``max(final_epsilon, epsilon - epsilon_decay)``, start 1); exponential
  per episode or step with a floor (``max(epsilon_min, epsilon * 0.995)``: rasbt, yrlu, many
  gists); exponential towards a floor, ``min + (max - min) exp(-decay_rate * episode)`` (the
  Hugging Face Deep RL course's FrozenLake / Taxi agent and the tutorials that copy it);
  linear per step (DQN-style ``LinearSchedule``): ``eps_schedule`` covers them all, per
  episode or per step, with rates 1/n and floors 0 or 1/n;
* already in the plain grammar -- optimistic initial values (``init``, any signed rational),
  the sample-average step size ``1/n(s, a)`` (per state-action pair), UCB's constant (UCB1's
  ``c``, any positive rational) and the Beta prior of Thompson sampling (integer
  ``prior_alpha``, ``prior_beta``).

Not covered, and why: rates and floors that are not 1/n (e.g. ``0.9 / 500``; a teacher with
one is caught by the misspecification check); global (per-step or per-episode) step-size
schedules, rare in the surveyed tabular code (where they appear they take the exp-to-floor
form of epsilon's); ties broken uniformly by the sampling of a different argmax than the
action rule's. Bootstrapping the last step of a truncated episode on a drawn, never-taken next
action (SARSA written as ``a2 = choose(s2); update(Q[s2, a2])`` also at a time limit) is not a
function of the recorded history: the drawn action is a latent variable. A program that
models it exactly is a mixture over its draws -- A branches per truncation, each with its own
value table from then on, A^k after k truncations (branches merge only while the values they
wrote are equal) -- which no finite table set of the interpreter holds; the class keeps the
closest function of the history (the expectation under the program's own policy, which is
the drawn action's expected value), and the misspecification check reports the gap.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from learners.solomonoff.parser import ProgramParseError, parse_program
from learners.solomonoff.prefix_code import KIND_TAG, decode_program, encode_program, td_bits
from learners.solomonoff.printer import program_source
from learners.solomonoff.syntax import TD, UCB1, Constant, Cyclic, Program, Reactive, Stochastic, Thompson
from theory import codes as C

#: The implementation variants a grammar may hold (``Grammar.variants``).
VARIANTS = ("act_first", "truncation", "ties", "eps_schedule")


@dataclass(frozen=True)
class Grammar:
    """Programs for ``n_states`` observations (Discrete) and ``n_actions`` actions.

    ``bandit``: every step ends an episode (one pull per episode); then UCB1 and Thompson are
    available, a Reactive table or an episode clock would be a constant, and the TD bootstrap
    terms always vanish. ``episodic``: episodes end (so the episode clock means something).

    ``variants``: implementation variants of the TD programs this grammar also holds (opt-in,
    so that the code lengths of the plain grammar, and every figure measured on it, stay put):

    * ``"act_first"`` -- the order of acting and updating. TD programs whose target has no
      ``Q(s',a')`` term carry one more bit: '0' updates then draws the next action (the
      textbook's Q-learning / expected SARSA), '1' draws the next action from the values
      before the update (as in SARSA-shaped loops applied to the other targets);
    * ``"truncation"`` -- what the last step of an episode cut by a time limit bootstraps on.
      TD programs whose target has a g-term carry one more bit: '0' the target's own terms (the
      plain grammar), '1' nothing: the truncation is treated as terminal;
    * ``"ties"`` -- how greedy and eps_greedy break ties between maximal values: one more bit
      after their kind tag, '0' uniformly (the plain grammar), '1' all to the first index
      (``np.argmax``);
    * ``"eps_schedule"`` -- epsilon that decays: eps_greedy's parameter becomes '0' + a constant
      epsilon (the plain grammar's, one bit longer) or '1' + a schedule (``Schedule``: start,
      per episode or step, exponential, linear or exponential towards the floor, rate 1/n,
      floor 0 or 1/n)."""

    n_states: int
    n_actions: int
    bandit: bool = False
    variants: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.n_actions < 2:
            raise ValueError(f"a grammar needs at least 2 actions, got {self.n_actions}")
        if self.n_states < 1:
            raise ValueError(f"a grammar needs at least 1 state, got {self.n_states}")
        if self.bandit and self.n_states != 1:
            raise ValueError("the bandit grammar has one observation")
        unknown = set(self.variants) - set(VARIANTS)
        if unknown:
            raise ValueError(f"unknown grammar variants {sorted(unknown)} (variants: {', '.join(VARIANTS)})")
        if self.bandit and {"act_first", "truncation"} & set(self.variants):
            raise ValueError("a bandit's steps all end an episode: act_first and truncation do not apply to it")

    @property
    def orders(self) -> bool:
        """TD programs code the order of acting and updating (the ``act_first`` variant)."""
        return "act_first" in self.variants

    @property
    def truncations(self) -> bool:
        """TD programs code what a truncation bootstraps on (the ``truncation`` variant)."""
        return "truncation" in self.variants

    @property
    def ties(self) -> bool:
        """greedy / eps_greedy code how they break ties (the ``ties`` variant)."""
        return "ties" in self.variants

    @property
    def schedules(self) -> bool:
        """eps_greedy codes an epsilon schedule (the ``eps_schedule`` variant)."""
        return "eps_schedule" in self.variants

    def flags(self) -> tuple[bool, bool, bool, bool]:
        """(orders, truncations, ties, schedules): the variant words TD programs carry."""
        return self.orders, self.truncations, self.ties, self.schedules

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
            return td_bits(p, *self.flags())
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
        if isinstance(p, TD) and p.act_first and not self.orders:
            raise ValueError("act_first programs are part of a grammar with variants=('act_first',)")
        if isinstance(p, TD) and p.trunc_terminal and not self.truncations:
            raise ValueError("truncation=terminal programs are part of a grammar with variants=('truncation',)")
        if isinstance(p, TD) and p.explore.ties != "uniform" and not self.ties:
            raise ValueError("ties=first programs are part of a grammar with variants=('ties',)")
        if isinstance(p, TD) and p.explore.schedule is not None and not self.schedules:
            raise ValueError("epsilon schedules are part of a grammar with variants=('eps_schedule',)")
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
        return encode_program(p, *self.flags())

    def decode(self, bits: str, pos: int = 0) -> tuple[Program, int]:
        """Inverse of ``encode`` for TD / UCB1 / Thompson programs."""
        return decode_program(bits, pos, *self.flags())

    # ---- source ------------------------------------------------------------------------------
    def source(self, p: Program) -> str:
        return program_source(p)

    def parse(self, text: str) -> Program:
        p = parse_program(text)
        self.check(p)
        return p



__all__ = ["Grammar", "Program", "ProgramParseError", "parse_program", "program_source"]
