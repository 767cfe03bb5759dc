"""Tabular TD teachers: ``q_learning``, ``sarsa`` and ``expected_sarsa``.

The exact semantics, which the Solomonoff mixture reproduces program by program, for a Discrete
observation ``s`` and A actions:

* state: ``Q`` float64 ``[S, A]`` initialised to ``init`` (optimistic if > 0) and ``N`` int64
  ``[S, A]``, the number of updates of each (s, a);
* ``action_probs(s)`` is a pure function of ``Q[s]`` and ``N[s]``:

  - ``eps_greedy``: ``eps/A + (1-eps) [a in G]/|G|``, G = the argmax set of ``Q[s]`` by exact
    float equality (ties share the greedy mass: the random tie-break is part of the one draw);
  - ``softmax``: ``exp((Q[s] - max Q[s]) / temperature)`` normalised;
  - ``count_bonus``: uniform over the argmax set of ``Q[s] + bonus / sqrt(N[s] + 1)``;

* ``observe(s, a, r, s2, terminated, truncated)``: bootstrap ``B(s2)`` from Q (and N) *before*
  the update of (s, a) -- ``max Q[s2]`` (Q-learning), ``pi(s2) . Q[s2]`` (expected SARSA),
  ``Q[s2, a2]`` with a2 the next action actually taken (SARSA; at a truncation, where no next
  action is taken, SARSA uses the expected-SARSA value). Then ``N[s,a] += 1``,
  ``alpha_t = alpha`` or ``1/N[s,a]``, ``y = r`` if terminated else ``r + gamma B``,
  ``Q[s,a] += alpha_t (y - Q[s,a])``. Truncated steps bootstrap from the true final
  observation ``s2``.
* SARSA defers the update of a non-final step to the next ``observe`` call (which carries a2),
  so the action at s2 is drawn from Q before (s, a) is updated -- Sutton & Barto's order.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from learners.protocols import Transition
from learners.teachers.base import TeacherBase, finite_number, opt, register_teacher

STEP_SIZES = ("constant", "1/n")
EXPLORATIONS = ("eps_greedy", "softmax", "count_bonus")
ALGORITHMS = ("q_learning", "sarsa", "expected_sarsa")




@dataclass
class TabularConfig:
    """Hyper-parameters of a tabular TD teacher (every field is a ``--flag`` of the CLI)."""

    gamma: float = opt(0.9, "discount factor in [0, 1]")
    alpha: float = opt(0.25, "step size in (0, 1] when step_size is 'constant'")
    step_size: str = opt("constant", "'constant' (alpha) or '1/n' (1 / number of updates of (s, a))",
                         choices=STEP_SIZES)
    init: float = opt(0.0, "initial value of every Q[s, a] (> 0 is optimistic)")
    exploration: str = opt("eps_greedy", "'eps_greedy', 'softmax' (Boltzmann) or 'count_bonus' "
                           "(greedy on Q + bonus / sqrt(N + 1))", choices=EXPLORATIONS)
    epsilon: float = opt(0.1, "eps_greedy: probability of a uniformly random action, in [0, 1]")
    temperature: float = opt(1.0, "softmax: temperature > 0")
    bonus: float = opt(1.0, "count_bonus: bonus scale c >= 0")

    def __post_init__(self) -> None:
        self.gamma = finite_number("gamma", self.gamma)
        self.alpha = finite_number("alpha", self.alpha)
        self.init = finite_number("init", self.init)
        self.epsilon = finite_number("epsilon", self.epsilon)
        self.temperature = finite_number("temperature", self.temperature)
        self.bonus = finite_number("bonus", self.bonus)
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")
        if not 0.0 < self.alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {self.alpha}")
        if self.step_size not in STEP_SIZES:
            raise ValueError(f"step_size must be one of {STEP_SIZES}, got {self.step_size!r}")
        if self.exploration not in EXPLORATIONS:
            raise ValueError(f"exploration must be one of {EXPLORATIONS}, got {self.exploration!r}")
        if not 0.0 <= self.epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {self.epsilon}")
        if not self.temperature > 0.0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if not self.bonus >= 0.0:
            raise ValueError(f"bonus must be >= 0, got {self.bonus}")


class TabularTD(TeacherBase):
    """A tabular TD learner on a Discrete observation space; ``algorithm`` is fixed per registered
    name (see the module docstring for the exact update and action distribution)."""

    Config: ClassVar[type] = TabularConfig
    algorithm: ClassVar[str] = ""

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, config: TabularConfig,
                 seed: int | None):
        super().__init__(observation_space, action_space, config, seed)
        if not isinstance(observation_space, gym.spaces.Discrete):
            raise TypeError(f"{self.name}: needs a Discrete observation space (one index per state), "
                            f"got {observation_space}")
        if not isinstance(config, TabularConfig):
            raise TypeError(f"{self.name}: config must be a TabularConfig, got {type(config).__name__}")
        self.n_states = int(observation_space.n)
        self._start = int(observation_space.start)
        self.Q = np.full((self.n_states, self.n_actions), config.init, dtype=np.float64)
        self.N = np.zeros((self.n_states, self.n_actions), dtype=np.int64)
        self._pending: Transition | None = None  # SARSA: the step waiting for its next action
        # Hot-path constants.
        c = config
        self._eps_each = c.epsilon / self.n_actions
        self._greedy_mass = 1.0 - c.epsilon
        self._small = self.n_actions <= 16
        self._probs = {"eps_greedy": self._probs_eps, "softmax": self._probs_softmax,
                       "count_bonus": self._probs_bonus}[c.exploration]

    # ------------------------------------------------------------------ acting
    def _state(self, obs: Any) -> int:
        s = int(obs) - self._start
        if not 0 <= s < self.n_states:
            raise ValueError(f"{self.name}: observation {obs!r} is outside {self.observation_space}")
        return s

    # Rows are short (a handful of actions), where Python floats beat numpy's per-call overhead
    # several times over; both paths compute the same IEEE operations, so the same bits.
    def _probs_eps(self, s: int) -> np.ndarray:
        if self._small:
            q = self.Q[s].tolist()
            m = max(q)
            e = self._eps_each
            hi = e + self._greedy_mass / q.count(m)
            return np.array([hi if x == m else e for x in q])
        q = self.Q[s]
        greedy = q == q.max()
        return self._eps_each + self._greedy_mass / np.count_nonzero(greedy) * greedy

    def _probs_softmax(self, s: int) -> np.ndarray:
        q = self.Q[s]
        z = np.exp((q - q.max()) / self.cfg.temperature)
        return z / z.sum()

    def _probs_bonus(self, s: int) -> np.ndarray:
        c = self.cfg.bonus
        if self._small:
            u = [q + c / math.sqrt(n + 1.0) for q, n in zip(self.Q[s].tolist(), self.N[s].tolist())]
            m = max(u)
            p = 1.0 / u.count(m)
            return np.array([p if x == m else 0.0 for x in u])
        u = self.Q[s] + c / np.sqrt(self.N[s] + 1.0)
        greedy = u == u.max()
        return greedy / float(np.count_nonzero(greedy))

    def action_probs(self, obs: Any) -> np.ndarray:
        return self._probs(self._state(obs))

    def values(self, obs: Any) -> np.ndarray:
        return self.Q[self._state(obs)].copy()

    # ------------------------------------------------------------------ learning
    def _expected(self, s2: int) -> float:
        return float(self._probs(s2) @ self.Q[s2])

    def _update(self, s: int, a: int, r: float, terminated: bool, bootstrap: float) -> None:
        self.N[s, a] += 1
        step = self.cfg.alpha if self.cfg.step_size == "constant" else 1.0 / self.N[s, a]
        target = r if terminated else r + self.cfg.gamma * bootstrap
        self.Q[s, a] += step * (target - self.Q[s, a])

    def observe(self, transition: Transition, *, intervention: bool = True) -> None:
        # A learner learns from its own transitions whoever chose them: ``intervention`` is ignored.
        t = transition
        s, a, s2 = self._state(t.obs), int(t.action), self._state(t.next_obs)
        if not 0 <= a < self.n_actions:
            raise ValueError(f"{self.name}: action {t.action!r} is outside {self.action_space}")
        r, terminated, truncated = float(t.reward), bool(t.terminated), bool(t.truncated)
        if not math.isfinite(r):
            raise ValueError(f"{self.name}: reward must be finite, got {t.reward!r}")
        algo = self.algorithm
        if algo == "sarsa":
            p = self._pending
            if p is not None:
                self._pending = None
                ps, ps2 = self._state(p.obs), self._state(p.next_obs)
                # a2 = the action just taken in p's next state, drawn from Q before this update.
                self._update(ps, int(p.action), float(p.reward), False, self.Q[ps2, a])
            if not (terminated or truncated):
                self._pending = t
                return
            # A final step is updated at once; at a truncation no next action is ever taken, so
            # SARSA bootstraps with its expectation under the current policy.
            bootstrap = 0.0 if terminated else self._expected(s2)
        elif terminated:
            bootstrap = 0.0
        elif algo == "q_learning":
            bootstrap = max(self.Q[s2].tolist())
        else:  # expected_sarsa
            bootstrap = self._expected(s2)
        self._update(s, a, r, terminated, bootstrap)

    # ------------------------------------------------------------------ snapshots
    def weights(self) -> dict[str, np.ndarray]:
        return {"Q": self.Q.copy(), "N": self.N.copy()}

    def load_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Restore ``Q`` and ``N`` (a SARSA transition still pending is kept)."""
        q = np.asarray(weights["Q"], dtype=np.float64)
        n = np.asarray(weights["N"])
        if q.shape != self.Q.shape or n.shape != self.N.shape:
            raise ValueError(f"{self.name}: weights have shapes Q{q.shape} N{n.shape}, "
                             f"expected Q{self.Q.shape} N{self.N.shape}")
        if n.dtype.kind not in "iu" or (n < 0).any():
            raise ValueError(f"{self.name}: weights N must be non-negative integers, got dtype {n.dtype}")
        self.Q = q.copy()
        self.N = n.astype(np.int64)

    def get_state(self) -> dict[str, Any]:
        """Everything needed to resume bit-identically: numpy arrays and JSON-able values."""
        p = self._pending
        pending = None if p is None else {
            "obs": int(p.obs), "action": int(p.action), "reward": float(p.reward),
            "next_obs": int(p.next_obs), "terminated": bool(p.terminated), "truncated": bool(p.truncated)}
        return {"teacher": self.name, "weights": self.weights(), "pending": pending, "rng": self.rng_state()}

    def set_state(self, state: dict[str, Any]) -> None:
        if state.get("teacher") != self.name:
            raise ValueError(f"{self.name}: state is for teacher {state.get('teacher')!r}")
        self.load_weights(state["weights"])
        p = state["pending"]
        self._pending = None if p is None else Transition(
            int(p["obs"]), int(p["action"]), float(p["reward"]), int(p["next_obs"]),
            bool(p["terminated"]), bool(p["truncated"]))
        self.set_rng_state(state["rng"])


@register_teacher("q_learning", "tabular Q-learning (bootstrap max_a Q[s', a])", ("tabular",))
class QLearning(TabularTD):
    algorithm = "q_learning"


@register_teacher("sarsa", "tabular SARSA (bootstrap Q[s', a'] of the next action taken)", ("tabular",))
class Sarsa(TabularTD):
    algorithm = "sarsa"


@register_teacher("expected_sarsa", "tabular expected SARSA (bootstrap sum_a pi(a|s') Q[s', a])", ("tabular",))
class ExpectedSarsa(TabularTD):
    algorithm = "expected_sarsa"


__all__ = ["TabularConfig", "TabularTD", "QLearning", "Sarsa", "ExpectedSarsa"]
