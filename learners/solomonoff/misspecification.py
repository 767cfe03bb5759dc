"""Is the teacher inside the mixture's class? A test run while the mixture predicts.

**The regret test** (when the history records the teacher's own action probabilities, as the
history format requires). If the teacher is a program ``p`` of the class, the mixture's bound
gives ``L_xi <= L_p~ + K_p`` with ``L`` log-losses in bits, ``K_p`` the code length of ``p``
(``-log2`` of its normalised prior weight) and ``L_p~`` the log-loss of the *smoothed* ``p``,
at most ``T log2(1 / (1 - eps))`` above the teacher's own ``L_p`` (``eps``: the mixture's
smoothing). So the regret ``L_xi - L_p`` of a teacher inside the class never exceeds
``K + T log2(1 / (1 - eps))``, with ``K`` the longest code length of the class: the check fires
when it does (plus a margin of ``c`` bits for the rounding of stored probabilities). No false
alarm is possible; a teacher outside the class whose regret grows linearly is caught after
roughly ``K / (KL rate)`` steps.

**The alternatives test** (always run; the only one without the teacher's probabilities).
Alongside the mixture ``xi``, a few simple *alternative* predictors of the
teacher's next action are scored on the same actions:

* ``counts``: a smoothed count of the actions taken at each observation (Krichevsky-Trofimov,
  ``(N(s, a) + 1/2) / (N(s) + A/2)``), which knows nothing of learning but fits any teacher
  whose action frequencies per observation settle;
* ``sharper`` / ``flatter``: the mixture's own predictive raised to a power (``xi^2``, ``xi^4``;
  ``xi^(1/2)``) and renormalised: better than ``xi`` when the teacher is systematically more (or
  less) deterministic than anything the mixture believes in.

``alt`` is their equal-weight Bayes mixture. The check fires when the mixture has lost to it by
more than the allowance:

    L_xi(T) - L_alt(T) > K + c + T log2(1 / (1 - eps))

with ``c`` the significance in bits. Why it is sound: with the teacher a program ``p`` of the
class, by the bound above firing implies ``L_p - L_alt > c``. ``alt`` is a sequential predictor, so ``2^(L_p - L_alt)`` is a non-negative
martingale of mean 1 under the teacher, and by Ville's inequality the probability that it *ever*
exceeds ``2^c`` is at most ``2^-c``. The false-alarm rate on a teacher inside the class is
therefore at most ``2^-c`` (``c = 10``: 1/1024) over the whole history, at every length,
whatever the teacher -- no calibration run needed. Outside the class nothing bounds ``L_xi``,
and a teacher that an alternative fits better loses the mixture bits linearly in time.

What the alternatives test does not catch (the regret test does): a teacher outside the class
that the mixture still predicts better than every alternative (a near miss, e.g. one update
rule changed on a few steps). The posterior-
predictive surprise below is reported for those: ``excess = sum_t (l_t - H_t)``, the mixture's
log-loss minus its own expected log-loss (the entropy of its predictive), with ``sd`` the square
root of the summed variances of ``l_t`` under the predictive; a teacher in the class keeps it
near or below ``K``, a steady positive drift marks a near miss (it is not a calibrated test:
early, while the posterior is broad, the excess is typically negative).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: The alternative predictors (``tempered``: exponent applied to the mixture's predictive).
ALTERNATIVES = ("counts", "flatter", "sharper", "sharpest")
TEMPER = {"flatter": 0.5, "sharper": 2.0, "sharpest": 4.0}


class MisspecificationWarning(UserWarning):
    """The teacher's actions are predicted better by a simple alternative than any program of the
    mixture's class allows: identification and the regret bound do not apply to this history."""


@dataclass
class PredictiveCheck:
    """The running test of one mixture (see the module docstring).

    ``code_bits_max``: ``K``, the longest code length of a program of the class (normalised);
    ``smoothing``: the mixture's ``eps``; ``significance_bits``: ``c``."""

    n_states: int
    n_actions: int
    code_bits_max: float
    smoothing: float
    significance_bits: float = 10.0
    steps: int = 0
    log_loss_bits: float = 0.0          # sum_t l_t, the mixture's log-loss
    expected_bits: float = 0.0          # sum_t H_t
    variance_bits2: float = 0.0         # sum_t V_t
    alt_log_loss_bits: np.ndarray = field(default=None, repr=False)   # per alternative
    teacher_log_loss_bits: float = 0.0  # the teacher's own log-loss, on the steps that record it
    teacher_steps: int = 0
    fired_at: int | None = None         # evidence step (1-based) at which the check first fired
    fired_by: str | None = None         # "regret" | "alternatives"
    counts: np.ndarray = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.significance_bits > 0:
            raise ValueError(f"significance must be > 0 bits, got {self.significance_bits}")
        if self.counts is None:
            self.counts = np.zeros((self.n_states, self.n_actions))
        if self.alt_log_loss_bits is None:
            self.alt_log_loss_bits = np.zeros(len(ALTERNATIVES))
        self._smooth_cost = -math.log2(1.0 - self.smoothing)

    def update(self, pred: np.ndarray, s: int, a: int, teacher_prob: float | None = None) -> bool:
        """Account for one evidence step (the predictive ``pred`` that scored action ``a`` at
        ``s``; ``teacher_prob``: the teacher's own probability of ``a``, if known). True the
        first time the check fires."""
        # Python floats: rows of a handful of actions, where numpy's per-call overhead dominates
        pr = pred.tolist()
        lp = [math.log2(x) for x in pr]
        h = -sum(x * y for x, y in zip(pr, lp))
        self.log_loss_bits += -lp[a]
        if teacher_prob is not None:
            self.teacher_log_loss_bits += -math.log2(teacher_prob)
            self.teacher_steps += 1
        self.expected_bits += h
        self.variance_bits2 += max(sum(x * y * y for x, y in zip(pr, lp)) - h * h, 0.0)
        n = self.counts[s]
        alt = self.alt_log_loss_bits
        alt[0] += -math.log2((n[a] + 0.5) / (n.sum() + 0.5 * self.n_actions))
        n[a] += 1.0
        m = max(lp)
        for j, name in enumerate(ALTERNATIVES[1:], start=1):
            k = TEMPER[name]
            alt[j] += -(k * (lp[a] - m) - math.log2(sum(2.0 ** (k * (y - m)) for y in lp)))
        self.steps += 1
        if self.fired_at is not None:
            return False
        if self.teacher_steps == self.steps and self.regret_bits > self.allowance_bits:
            self.fired_by = "regret"
        elif self.evidence_for_alternative_bits > self.allowance_bits:
            self.fired_by = "alternatives"
        else:
            return False
        self.fired_at = self.steps
        return True

    @property
    def regret_bits(self) -> float | None:
        """``L_xi - L_teacher`` (None unless every step recorded the teacher's probability)."""
        if self.teacher_steps != self.steps:
            return None
        return self.log_loss_bits - self.teacher_log_loss_bits

    @property
    def alternative_log_loss_bits(self) -> float:
        """Log-loss of the equal-weight mixture of the alternatives."""
        x = -self.alt_log_loss_bits
        m = float(x.max())
        return -(m + math.log2(float(np.exp2(x - m).sum())) - math.log2(x.size))

    @property
    def evidence_for_alternative_bits(self) -> float:
        """``L_xi - L_alt``: how many bits the alternatives beat the mixture by."""
        return self.log_loss_bits - self.alternative_log_loss_bits

    @property
    def allowance_bits(self) -> float:
        return self.code_bits_max + self.significance_bits + self.steps * self._smooth_cost

    @property
    def excess_bits(self) -> float:
        return self.log_loss_bits - self.expected_bits

    def report(self) -> dict[str, Any]:
        sd = math.sqrt(self.variance_bits2)
        return {"steps": self.steps,
                "misspecified": self.fired_at is not None,
                "fired_at_step": self.fired_at,
                "fired_by": self.fired_by,
                "regret_bits": self.regret_bits,
                "evidence_for_alternative_bits": self.evidence_for_alternative_bits,
                "allowance_bits": self.allowance_bits,
                "false_alarm_bound": 2.0 ** -self.significance_bits,
                "log_loss_bits": self.log_loss_bits,
                "alternative_log_loss_bits": dict(zip(ALTERNATIVES, map(float, self.alt_log_loss_bits))),
                "code_bits_max": self.code_bits_max,
                "expected_log_loss_bits": self.expected_bits,
                "excess_bits": self.excess_bits,
                "excess_sd_bits": sd}

    def message(self) -> str:
        if self.fired_by == "regret":
            why = (f"the mixture's log-loss exceeds the teacher's own by {self.regret_bits:.1f} bits, more than "
                   f"the {self.allowance_bits:.1f} bits the bound allows any program of the class")
        else:
            best = ALTERNATIVES[int(np.argmin(self.alt_log_loss_bits))]
            why = (f"simple alternative predictors (best: {best}) beat the mixture by "
                   f"{self.evidence_for_alternative_bits:.1f} bits, more than the {self.allowance_bits:.1f} bits a "
                   f"teacher inside the class allows (chance <= 2^-{self.significance_bits:g})")
        return (f"the teacher looks outside the mixture's program class: after {self.steps} steps {why}; "
                "identification and the regret bound do not apply to this history (Mixture.diagnostics() "
                "has the figures)")


__all__ = ["MisspecificationWarning", "PredictiveCheck", "ALTERNATIVES"]
