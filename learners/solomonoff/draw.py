"""Teachers drawn from the grammar: sample a program from the prior, build the matching teacher.

A program is drawn by decoding fair coin flips with the grammar's own prefix code -- which
samples exactly from the prior 2^-bits -- for each free part of a fixed family (the target of
Q-learning, SARSA or expected SARSA; or a bandit kind), rejecting draws longer than a budget
(the prior conditioned on fitting it). ``teacher_for(program)`` gives the registered teacher
name and options that implement that program (``learners/teachers``), so that the history of
the teacher is the history of the program.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Any, Callable, Sequence

import numpy as np

from learners.solomonoff.grammar import Grammar
from learners.solomonoff.prefix_code import explore_bits, explore_decode
from learners.solomonoff.printer import target_source
from learners.solomonoff.syntax import CANONICAL_TREE, TD, UCB1, Explore, Leaf, Program, Thompson, linear_form
from theory import codes as C

FAMILIES = ("QLearning", "SARSA", "ExpectedSARSA", "BanditEpsGreedy", "UCB1", "Thompson")


def _decode_random(decode: Callable[[str, int], tuple[Any, int]], rng: np.random.Generator) -> Any:
    n = 64
    while True:
        bits = "".join("1" if b else "0" for b in rng.integers(0, 2, size=n))
        try:
            return decode(bits, 0)[0]
        except C.CodeError:
            n *= 2  # the code word was longer than the flips drawn: draw more (same prefix law)


def family_programs(grammar: Grammar, family: str, *, max_bits: float,
                     explore_kinds: Sequence[str] = ("greedy", "eps_greedy", "softmax", "count_bonus")) -> list[Program]:
    """Every program of ``family`` with at most ``max_bits`` bits (and an allowed action rule)."""
    out: list[Program] = []
    room = int(max_bits)
    if family == "UCB1":
        return [UCB1(c) for c, b in C.positive_rationals(room - 3)]
    if family == "Thompson":
        return [Thompson(a, b) for a in range(1, 2 ** ((room - 3) // 2) + 1) for b in range(1, 2 ** ((room - 3) // 2) + 1)
                if grammar.bits(Thompson(a, b)) <= max_bits]
    target = Leaf("r") if family == "BanditEpsGreedy" else CANONICAL_TREE[family]
    fixed = 1 + (2 if family == "BanditEpsGreedy" else 7)
    rest = max_bits - fixed
    inits = C.signed_rationals(int(rest))
    alphas = [(None, 1)] + [(a, 1 + b) for a, b in C.unit_rationals(int(rest) - 1)]
    gammas = [(None, 0)] if family == "BanditEpsGreedy" else C.unit_rationals(int(rest))
    explores = [Explore("greedy")] + [Explore("eps_greedy", v) for v, _ in C.unit_rationals(int(rest) - 2)]
    explores += [Explore(k, v) for k in ("softmax", "count_bonus") for v, _ in C.powers_of_two(int(rest) - 2)]
    explores = [(e, explore_bits(e, grammar.ties, grammar.schedules)) for e in explores if e.kind in explore_kinds]
    for i, bi in inits:
        for a, ba in alphas:
            if bi + ba > rest:
                continue
            for gm, bg in gammas:
                if bi + ba + bg > rest:
                    continue
                for e, be in explores:
                    if bi + ba + bg + be <= rest:
                        out.append(TD(i, a, target, gm, e))
    return out


def draw_program(grammar: Grammar, family: str, rng: np.random.Generator, *, max_bits: float,
                 explore_kinds: Sequence[str] = ("greedy", "eps_greedy", "softmax", "count_bonus"),
                 how: str = "prior", max_tries: int = 100000) -> Program:
    """A program of ``family`` with ``bits <= max_bits`` and an action rule in ``explore_kinds``:
    ``how="prior"`` draws from the grammar's prior (2^-bits, by decoding coin flips);
    ``how="uniform"`` draws uniformly among all such programs (longer, more varied parameters)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; families: {', '.join(FAMILIES)}")
    if how == "uniform":
        progs = family_programs(grammar, family, max_bits=max_bits, explore_kinds=explore_kinds)
        if not progs:
            raise ValueError(f"no {family} program of at most {max_bits} bits")
        return progs[int(rng.integers(len(progs)))]
    if how != "prior":
        raise ValueError(f"how must be 'prior' or 'uniform', got {how!r}")
    for _ in range(max_tries):
        if family in ("QLearning", "SARSA", "ExpectedSARSA", "BanditEpsGreedy"):
            init = _decode_random(C.signed_rational_decode, rng)
            alpha = None if rng.random() < 0.5 else _decode_random(C.unit_rational_decode, rng)
            if family == "BanditEpsGreedy":
                target, gamma = Leaf("r"), None
            else:
                target = CANONICAL_TREE[family]
                gamma = _decode_random(C.unit_rational_decode, rng)
            explore = _decode_random(explore_decode, rng)
            if explore.kind not in explore_kinds:
                continue
            p: Program = TD(init, alpha, target, gamma, explore)
        elif family == "UCB1":
            p = UCB1(_decode_random(C.positive_rational_decode, rng))
        else:
            p = Thompson(_decode_random(C.elias_gamma_decode, rng), _decode_random(C.elias_gamma_decode, rng))
        try:
            if grammar.bits(p) <= max_bits:
                return p
        except ValueError:
            continue
    raise ValueError(f"no {family} program of at most {max_bits} bits drawn in {max_tries} tries")


def teacher_for(program: Program, *, bandit: bool = False) -> tuple[str, dict[str, Any]]:
    """(registered teacher name, options) of the teacher that runs ``program`` exactly."""
    if isinstance(program, UCB1):
        return "ucb1", {"c": float(program.c)}
    if isinstance(program, Thompson):
        return "thompson", {"prior_alpha": float(program.prior_alpha), "prior_beta": float(program.prior_beta)}
    if not isinstance(program, TD):
        raise ValueError(f"no teacher runs {type(program).__name__} programs")
    if program.act_first or program.trunc_terminal:
        raise ValueError("no registered teacher draws its next action before updating (order=act_first) or treats "
                         "a truncation as terminal (truncation=terminal)")
    e = program.explore
    if e.ties != "uniform" or e.schedule is not None:
        raise ValueError("no registered teacher breaks ties to the first index or decays epsilon "
                         "(learners.teachers.reference.TutorialQLearning does)")
    if bandit:
        if linear_form(program.target).terminal_only().as_tuple()[:2] != (Fraction(1), Fraction(0)):
            raise ValueError("the bandit teacher's target is r")
        if e.kind not in ("greedy", "eps_greedy"):
            raise ValueError("the bandit epsilon-greedy teacher needs a greedy or eps_greedy rule")
        kw = {"epsilon": float(e.param or 0), "init": float(program.init)}
        kw.update({"step_size": "1/n"} if program.alpha is None else {"step_size": "constant", "alpha": float(program.alpha)})
        return "bandit_eps_greedy", kw
    name = {"QLearning": "q_learning", "SARSA": "sarsa", "ExpectedSARSA": "expected_sarsa"}.get(program.name)
    if name is None:
        raise ValueError(f"no teacher runs the target {target_source(program.form)!r}")
    kw: dict[str, Any] = {"gamma": float(program.gamma), "init": float(program.init)}
    kw.update({"step_size": "1/n"} if program.alpha is None else {"step_size": "constant", "alpha": float(program.alpha)})
    if e.kind in ("greedy", "eps_greedy"):
        kw.update(exploration="eps_greedy", epsilon=float(e.param or 0))
    elif e.kind == "softmax":
        kw.update(exploration="softmax", temperature=float(e.param))
    else:
        kw.update(exploration="count_bonus", bonus=float(e.param))
    return name, kw


__all__ = ["draw_program", "family_programs", "teacher_for", "FAMILIES"]
