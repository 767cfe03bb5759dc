"""The mixture bound, checked on a run (every mixture test and experiment calls ``assert_bound``).

Three independent checks of the per-sequence bound of ``theory.bounds`` on the evidence the
mixture has seen:

1. internal: for every hypothesis h of the mixture, ``L_mix <= L_h + bits_h + log2 Z`` with L_h
   from the interpreter's log-likelihoods and L_mix from the predictive it actually emitted;
2. reference: for given programs p, L_p computed by the slow reference interpreter
   (``semantics.ProgramAgent``) on the history, at *every prefix* of it, with p's own length;
3. teacher: with the recorded ``teacher_probs`` (the raw, unsmoothed teacher), bound (2),
   ``L_mix <= L_teacher + bits(teacher) + log2 Z + n log2(1/(1-eps))`` at every prefix.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from learners.protocols import Transition
from learners.solomonoff.parser import parse_program
from learners.solomonoff.syntax import Program
from learners.solomonoff.semantics import ProgramAgent
from theory import bounds as TB


def reference_probs(program: Program | str, grammar: Any, history: Any, smoothing: float, *,
                    raw: bool = False) -> np.ndarray:
    """The program's action probabilities at every step of the history, teacher-forced along it by
    the slow reference interpreter (``semantics.ProgramAgent``): smoothed, or ``raw`` (before the
    smoothing). Stops after the last step whose next observation the history holds."""
    if isinstance(program, str):
        program = parse_program(program)
    ag = ProgramAgent(program, grammar, smoothing=smoothing)
    out = np.empty((len(history), grammar.n_actions))
    for t in range(len(history)):
        s = int(np.asarray(history.obs[t]).reshape(()))
        out[t] = ag.raw_probs(s) if raw else ag.action_probs(s)
        try:
            s2 = int(np.asarray(history.next_obs(t)).reshape(()))
        except (KeyError, IndexError):
            return out[:t + 1]
        ag.observe(Transition(s, int(history.action[t]), float(history.reward[t]), s2,
                              bool(history.terminated[t]), bool(history.truncated[t])), intervention=False)
    return out


def reference_log_loss(program: Program, grammar: Any, history: Any, smoothing: float) -> np.ndarray:
    """Cumulative log-loss (bits) of the smoothed program on the history's actions, per step."""
    p = reference_probs(program, grammar, history, smoothing)
    return np.cumsum(-np.log2(p[np.arange(len(p)), np.asarray(history.action[:len(p)], dtype=int)]))


def assert_bound(mixture: Any, history: Any = None, *, programs: Sequence[str | Program] = (),
                 teacher: str | Program | None = None, tol: float = 1e-6) -> dict[str, Any]:
    """Assert the per-sequence bound (see the module docstring); returns the tightest slacks.

    ``history``: the evidence the mixture was conditioned on, from its initial state (needed for
    checks 2 and 3). ``programs``: programs of the mixture's space to check with the reference
    interpreter. ``teacher``: the teacher's program, checked against ``teacher_probs``."""
    rep = mixture.check_bound(tol)
    out = {"internal_min_slack_bits": rep["min_slack_bits"], "steps": rep["steps"]}
    if history is None:
        return out
    curve = np.cumsum(mixture.mix_log_loss)
    if curve.size != len(history):
        raise ValueError(f"the mixture saw {curve.size} evidence steps, the history has {len(history)}")
    logZ = mixture.log2_normaliser
    g = mixture.grammar
    for p in programs:
        prog = mixture.parse(p)
        if mixture.class_info(prog)["mass"] == 0.0 and not mixture.class_info(prog)["hypotheses"]:
            raise ValueError(f"{p!r} is not in the mixture's space; the bound does not apply to it")
        Lp = reference_log_loss(prog, g, history, mixture.smoothing)
        slack = TB.bound_slack(curve[:Lp.size], Lp, g.bits(prog), logZ)
        if slack.min() < -tol:
            t = int(np.argmin(slack))
            raise AssertionError(f"bound violated at step {t} against {p!r}: mixture {curve[t]:.6f} bits > "
                                 f"program {Lp[t]:.6f} + {g.bits(prog):.2f} bits + log2 Z {logZ:.4f}")
        out.setdefault("reference_min_slack_bits", {})[str(p)] = float(slack.min())
    if teacher is not None:
        prog = mixture.parse(teacher)
        if not mixture.class_info(prog)["hypotheses"]:
            raise ValueError(f"the teacher {teacher!r} is not in the mixture's space; bound (2) does not apply")
        tp = np.asarray(history.teacher_probs, dtype=np.float64)
        taken = tp[np.arange(len(history)), np.asarray(history.action)]
        Lt = np.cumsum(-np.log2(taken))
        bound = TB.per_sequence_bound(Lt, g.bits(prog), logZ, smoothed=False, smoothing_eps=mixture.smoothing)
        slack = bound - curve
        if slack.min() < -tol:
            t = int(np.argmin(slack))
            raise AssertionError(f"bound (2) violated at step {t} against the teacher {teacher!r}: "
                                 f"mixture {curve[t]:.6f} > bound {bound[t]:.6f}")
        out["teacher_min_slack_bits"] = float(slack.min())
        out["teacher_final_slack_bits"] = float(slack[-1])
    return out


__all__ = ["assert_bound", "reference_log_loss"]
