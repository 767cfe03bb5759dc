"""Bandit teachers: ``bandit_eps_greedy``, ``ucb1`` and ``thompson`` (Beta-Bernoulli).

The observation is ignored (``hypospace/Bandit-v0`` has ``Discrete(1)``, always 0) and every
pull is one episode. Exact semantics (``notes/teacher_semantics.md``), A arms:

* ``bandit_eps_greedy``: estimates ``Q`` (start ``init``) and counts ``N``;
  ``probs = eps/A + (1-eps) [a in G]/|G|`` over the argmax set G (exact float equality);
  update ``N[a] += 1; Q[a] += alpha_t (r - Q[a])`` with ``alpha_t = 1/N[a]`` or ``alpha``.
* ``ucb1``: uniform over the arms never pulled while there are any; then uniform over the argmax
  set of ``mean[a] + sqrt(c ln(t) / N[a])``, t = total pulls so far.
* ``thompson``: posteriors ``Beta(prior_alpha + successes, prior_beta + failures)``; the action
  distribution is the exact probability that each arm draws the largest posterior sample,
  ``p_i = int f_i(x) prod_{j != i} F_j(x) dx``, by deterministic numerical integration
  (``learners.beta_bernoulli.thompson_probs``). Drawing from it with one uniform is the same distribution as sampling
  every posterior and taking the argmax.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from learners.beta_bernoulli import thompson_probs
from learners.protocols import Transition
from learners.teachers.base import TeacherBase, finite_number, opt, register_teacher

STEP_SIZES = ("1/n", "constant")

# ------------------------------------------------------------------------------------------
# Teachers
# ------------------------------------------------------------------------------------------
class BanditTeacher(TeacherBase):
    """Shared plumbing: the observation is ignored, every pull is one episode."""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, config: Any, seed: int | None):
        super().__init__(observation_space, action_space, config, seed)
        if not (isinstance(observation_space, gym.spaces.Discrete) and int(observation_space.n) == 1):
            raise TypeError(f"{self.name}: a bandit teacher needs the bandit's Discrete(1) observation space, "
                            f"got {observation_space}")
        if not isinstance(config, self.Config):
            raise TypeError(f"{self.name}: config must be a {self.Config.__name__}, got {type(config).__name__}")

    def _arm(self, transition: Transition) -> tuple[int, float]:
        a = int(transition.action)
        if not 0 <= a < self.n_actions:
            raise ValueError(f"{self.name}: action {transition.action!r} is outside {self.action_space}")
        r = float(transition.reward)
        if not math.isfinite(r):
            raise ValueError(f"{self.name}: reward must be finite, got {transition.reward!r}")
        return a, r

    def _check_weights(self, weights: dict[str, np.ndarray], names: tuple[str, ...]) -> dict[str, np.ndarray]:
        missing = [k for k in names if k not in weights]
        if missing:
            raise ValueError(f"{self.name}: weights lack {missing}")
        out = {k: np.asarray(weights[k]) for k in names}
        for k, v in out.items():
            if v.shape != (self.n_actions,):
                raise ValueError(f"{self.name}: weights {k} has shape {v.shape}, expected ({self.n_actions},)")
        return out

    def get_state(self) -> dict[str, Any]:
        """Everything needed to resume bit-identically: numpy arrays and JSON-able values."""
        return {"teacher": self.name, "weights": self.weights(), "rng": self.rng_state()}

    def set_state(self, state: dict[str, Any]) -> None:
        if state.get("teacher") != self.name:
            raise ValueError(f"{self.name}: state is for teacher {state.get('teacher')!r}")
        self.load_weights(state["weights"])
        self.set_rng_state(state["rng"])


def _uniform_over(mask: np.ndarray) -> np.ndarray:
    return mask / float(np.count_nonzero(mask))


@dataclass
class EpsGreedyBanditConfig:
    """Hyper-parameters of the epsilon-greedy bandit teacher."""

    epsilon: float = opt(0.1, "probability of a uniformly random arm, in [0, 1]")
    init: float = opt(0.0, "initial estimate of every arm's mean (> 0 is optimistic)")
    step_size: str = opt("1/n", "'1/n' (sample average) or 'constant' (alpha)", choices=STEP_SIZES)
    alpha: float = opt(0.1, "step size in (0, 1] when step_size is 'constant'")

    def __post_init__(self) -> None:
        self.epsilon = finite_number("epsilon", self.epsilon)
        self.init = finite_number("init", self.init)
        self.alpha = finite_number("alpha", self.alpha)
        if not 0.0 <= self.epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {self.epsilon}")
        if self.step_size not in STEP_SIZES:
            raise ValueError(f"step_size must be one of {STEP_SIZES}, got {self.step_size!r}")
        if not 0.0 < self.alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {self.alpha}")


@register_teacher("bandit_eps_greedy", "epsilon-greedy on sample-average (or constant step) arm estimates",
                  ("bandit",))
class EpsGreedyBandit(BanditTeacher):
    Config: ClassVar[type] = EpsGreedyBanditConfig

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, config: EpsGreedyBanditConfig,
                 seed: int | None):
        super().__init__(observation_space, action_space, config, seed)
        self.Q = np.full(self.n_actions, config.init, dtype=np.float64)
        self.N = np.zeros(self.n_actions, dtype=np.int64)

    def action_probs(self, obs: Any) -> np.ndarray:
        eps = self.cfg.epsilon
        return eps / self.n_actions + (1.0 - eps) * _uniform_over(self.Q == self.Q.max())

    def values(self, obs: Any) -> np.ndarray:
        return self.Q.copy()

    def observe(self, transition: Transition, *, intervention: bool = True) -> None:
        a, r = self._arm(transition)
        self.N[a] += 1
        step = 1.0 / self.N[a] if self.cfg.step_size == "1/n" else self.cfg.alpha
        self.Q[a] += step * (r - self.Q[a])

    def weights(self) -> dict[str, np.ndarray]:
        return {"Q": self.Q.copy(), "N": self.N.copy()}

    def load_weights(self, weights: dict[str, np.ndarray]) -> None:
        w = self._check_weights(weights, ("Q", "N"))
        self.Q = w["Q"].astype(np.float64)
        self.N = w["N"].astype(np.int64)


@dataclass
class UCB1Config:
    """Hyper-parameters of UCB1."""

    c: float = opt(2.0, "exploration constant: index = mean + sqrt(c ln(t) / N), c >= 0 (2 is Auer et al.'s UCB1)")

    def __post_init__(self) -> None:
        self.c = finite_number("c", self.c)
        if not self.c >= 0.0:
            raise ValueError(f"c must be >= 0, got {self.c}")


@register_teacher("ucb1", "UCB1: every arm once, then argmax of mean + sqrt(c ln t / N)", ("bandit",))
class UCB1(BanditTeacher):
    Config: ClassVar[type] = UCB1Config

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, config: UCB1Config,
                 seed: int | None):
        super().__init__(observation_space, action_space, config, seed)
        self.N = np.zeros(self.n_actions, dtype=np.int64)
        self.sum = np.zeros(self.n_actions, dtype=np.float64)

    @property
    def mean(self) -> np.ndarray:
        return np.divide(self.sum, self.N, out=np.zeros(self.n_actions), where=self.N > 0)

    def action_probs(self, obs: Any) -> np.ndarray:
        unpulled = self.N == 0
        if unpulled.any():
            return _uniform_over(unpulled)
        t = float(self.N.sum())
        index = self.sum / self.N + np.sqrt(self.cfg.c * math.log(t) / self.N)
        return _uniform_over(index == index.max())

    def values(self, obs: Any) -> np.ndarray:
        """The arms' mean rewards (finite; the index of an unpulled arm is +inf)."""
        return self.mean

    def observe(self, transition: Transition, *, intervention: bool = True) -> None:
        a, r = self._arm(transition)
        self.N[a] += 1
        self.sum[a] += r

    def weights(self) -> dict[str, np.ndarray]:
        # ``mean`` (not the running sum) is the documented weight; the sum is mean * N exactly
        # only up to rounding, so the sum is kept too for a bit-identical resume.
        return {"mean": self.mean, "N": self.N.copy(), "sum": self.sum.copy()}

    def load_weights(self, weights: dict[str, np.ndarray]) -> None:
        has_sum = "sum" in weights
        w = self._check_weights(weights, ("mean", "N", "sum") if has_sum else ("mean", "N"))
        self.N = w["N"].astype(np.int64)
        self.sum = w["sum"].astype(np.float64) if has_sum else w["mean"].astype(np.float64) * self.N


@dataclass
class ThompsonConfig:
    """Beta prior of Thompson sampling on Bernoulli arms."""

    prior_alpha: float = opt(1.0, "Beta prior alpha (pseudo-successes) > 0")
    prior_beta: float = opt(1.0, "Beta prior beta (pseudo-failures) > 0")

    def __post_init__(self) -> None:
        self.prior_alpha = finite_number("prior_alpha", self.prior_alpha)
        self.prior_beta = finite_number("prior_beta", self.prior_beta)
        if not self.prior_alpha > 0.0:
            raise ValueError(f"prior_alpha must be > 0, got {self.prior_alpha}")
        if not self.prior_beta > 0.0:
            raise ValueError(f"prior_beta must be > 0, got {self.prior_beta}")


@register_teacher("thompson", "Thompson sampling, Beta-Bernoulli; exact action probabilities by quadrature",
                  ("bandit",))
class Thompson(BanditTeacher):
    Config: ClassVar[type] = ThompsonConfig

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, config: ThompsonConfig,
                 seed: int | None):
        super().__init__(observation_space, action_space, config, seed)
        self.alpha = np.full(self.n_actions, config.prior_alpha, dtype=np.float64)
        self.beta = np.full(self.n_actions, config.prior_beta, dtype=np.float64)
        self._cache: np.ndarray | None = None  # probs of the current posterior (act and the recorder both ask)

    def action_probs(self, obs: Any) -> np.ndarray:
        if self._cache is None:
            self._cache = thompson_probs(self.alpha, self.beta)
        return self._cache.copy()

    def values(self, obs: Any) -> np.ndarray:
        """Posterior mean of each arm."""
        return self.alpha / (self.alpha + self.beta)

    def observe(self, transition: Transition, *, intervention: bool = True) -> None:
        a, r = self._arm(transition)
        if r not in (0.0, 1.0):
            raise ValueError(f"{self.name}: Beta-Bernoulli Thompson sampling needs rewards 0 or 1, got {r}")
        self.alpha[a] += r
        self.beta[a] += 1.0 - r
        self._cache = None

    def weights(self) -> dict[str, np.ndarray]:
        return {"alpha": self.alpha.copy(), "beta": self.beta.copy()}

    def load_weights(self, weights: dict[str, np.ndarray]) -> None:
        w = self._check_weights(weights, ("alpha", "beta"))
        al, be = w["alpha"].astype(np.float64), w["beta"].astype(np.float64)
        if not (np.all(al > 0) and np.all(be > 0)):
            raise ValueError(f"{self.name}: posterior parameters must be > 0")
        self.alpha, self.beta = al, be
        self._cache = None


__all__ = ["BanditTeacher", "EpsGreedyBandit", "UCB1", "Thompson",
           "EpsGreedyBanditConfig", "UCB1Config", "ThompsonConfig"]
