"""Tabular teachers written the way public tutorial code writes them (plain Python, one table).

They are references for the grammar's implementation variants, not registered teachers: each
gives the exact distribution its action is drawn from (``action_probs``), so a recorded history
of one can be checked against the program that should equal it.

``TutorialQLearning`` is Q-learning as the gymnasium Blackjack tutorial (and most FrozenLake
tutorials) write it::

    a = env.action_space.sample() if rng.random() < epsilon else int(np.argmax(Q[s]))
    s2, r, terminated, truncated, _ = env.step(a)
    Q[s, a] += alpha * (r + gamma * (not terminated) * np.max(Q[s2]) - Q[s, a])
    if terminated or truncated: epsilon = max(final_epsilon, epsilon - epsilon_decay)

so ties go to the first maximal action (``np.argmax``), and epsilon decays linearly after every
episode down to a floor; ``decay="exp"`` multiplies instead (``epsilon * 0.995``, the other
common form), ``decay="exp_to_floor"`` recomputes it as the Hugging Face Deep RL course's
FrozenLake / Taxi agent does (``min_epsilon + (max_epsilon - min_epsilon) * np.exp(-decay_rate
* episode)``), ``per="step"`` decays after every step.
"""
from __future__ import annotations

import numpy as np

from learners.protocols import Transition


class TutorialQLearning:
    """Q-learning with ``np.argmax`` ties and a decaying epsilon (see the module docstring).

    ``epsilon_decay``: subtracted (``decay="linear"``) or the multiplier's complement
    (``decay="exp"``: epsilon *= 1 - epsilon_decay, the factor written as its decimal literal
    would be); ``ties="uniform"`` shares the greedy mass among tied actions instead."""

    def __init__(self, n_states: int, n_actions: int, *, alpha: float, gamma: float, epsilon: float,
                 epsilon_decay: float, final_epsilon: float, decay: str = "linear", per: str = "episode",
                 ties: str = "first", seed: int = 0):
        if decay not in ("linear", "exp", "exp_to_floor") or per not in ("episode", "step") or ties not in ("first", "uniform"):
            raise ValueError(f"decay {decay!r} (linear, exp, exp_to_floor), per {per!r} (episode, step), ties {ties!r} (first, uniform)")
        self.Q = np.zeros((n_states, n_actions))
        self.n_actions, self.alpha, self.gamma = n_actions, alpha, gamma
        self.epsilon, self.final_epsilon, self.decay, self.per, self.ties = epsilon, final_epsilon, decay, per, ties
        # the factor as a decimal literal is written: 0.995 is the double nearest 1 - 1/200
        n = round(1.0 / epsilon_decay)
        self.factor = (n - 1) / n
        self.epsilon_decay = epsilon_decay
        self.max_epsilon, self.decays = epsilon, 0
        self.rng = np.random.default_rng(seed)

    def action_probs(self, obs) -> np.ndarray:
        q = self.Q[int(obs)]
        if self.ties == "first":
            greedy = np.arange(self.n_actions) == int(np.argmax(q))
            return self.epsilon / self.n_actions + (1.0 - self.epsilon) * greedy
        greedy = q == q.max()
        return self.epsilon / self.n_actions + (1.0 - self.epsilon) * greedy / np.count_nonzero(greedy)

    def values(self, obs) -> np.ndarray:
        return self.Q[int(obs)].copy()

    def weights(self) -> dict[str, np.ndarray]:
        return {"Q": self.Q.copy()}

    def observe(self, t: Transition, *, intervention: bool = True) -> None:
        s, a, r, s2 = int(t.obs), int(t.action), float(t.reward), int(t.next_obs)
        target = r if t.terminated else r + self.gamma * np.max(self.Q[s2])
        self.Q[s, a] += self.alpha * (target - self.Q[s, a])
        if self.per == "step" or t.terminated or t.truncated:
            self.decays += 1
            if self.decay == "exp_to_floor":
                self.epsilon = self.final_epsilon + (self.max_epsilon - self.final_epsilon) * np.exp(
                    -self.epsilon_decay * self.decays)
                return
            e = self.epsilon * self.factor if self.decay == "exp" else self.epsilon - self.epsilon_decay
            self.epsilon = max(self.final_epsilon, e)


__all__ = ["TutorialQLearning"]
