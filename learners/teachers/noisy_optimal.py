"""The AD-epsilon source (Zisman et al., 2024): the task's optimal policy mixed with uniform
noise whose weight falls linearly from 1 at the first episode to ``noise_final`` at episode
``noise_episodes``, so a history "improves" from random to near-optimal on a schedule chosen by the
experimenter. ``teacher_probs`` is the exact mixture. It does not learn: it only counts
episodes.

The optimal actions are a fact of the task: ``env.unwrapped.optimal_actions()`` (Dark Room,
Bernoulli bandits) gives the ``[n_obs, n_actions]`` table passed as ``optimal``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from learners.protocols import Transition
from learners.teachers.base import TeacherBase, opt, register_teacher


@dataclass
class NoisyOptimalConfig:
    noise_episodes: int = opt(60, "episodes over which the noise weight falls from 1 to noise_final")
    noise_final: float = opt(0.0, "noise weight from episode noise_episodes on")
    optimal: list | None = opt(None, "the task's optimal actions, [n_obs][n_actions] booleans (env.unwrapped.optimal_actions())")


@register_teacher("noisy_optimal", "AD-eps: the optimal policy with uniform noise falling from 1 to noise_final over noise_episodes",
                  ("tabular", "bandit"))
class NoisyOptimal(TeacherBase):
    """``p = eps_e / A + (1 - eps_e) * uniform(optimal actions)``, ``eps_e`` falling linearly
    from 1 (episode 0) to ``noise_final`` (episode ``noise_episodes``)."""

    Config = NoisyOptimalConfig

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, config: NoisyOptimalConfig, seed: int | None):
        super().__init__(observation_space, action_space, config, seed)
        if config.optimal is None:
            raise ValueError("noisy_optimal: give optimal=env.unwrapped.optimal_actions() (the task's optimal actions)")
        self.optimal = np.asarray(config.optimal, bool)
        if self.optimal.ndim != 2 or self.optimal.shape[1] != self.n_actions or not self.optimal.any(1).all():
            raise ValueError(f"noisy_optimal: optimal must be [n_obs, {self.n_actions}] with an optimal action in every row")
        self.episodes, self.final = int(config.noise_episodes), float(config.noise_final)
        if self.episodes < 1 or not 0.0 <= self.final <= 1.0:
            raise ValueError("noisy_optimal: noise_episodes must be >= 1 and noise_final in [0, 1]")
        self.episode = 0

    def config(self) -> dict[str, Any]:
        # The optimal table is a fact of the task, already recorded with the env's kwargs.
        return {"teacher": self.name, "seed": self.seed, "noise_episodes": self.episodes, "noise_final": self.final}

    def epsilon(self) -> float:
        f = min(1.0, self.episode / self.episodes)
        return 1.0 + (self.final - 1.0) * f

    def action_probs(self, obs: Any) -> np.ndarray:
        best = self.optimal[int(obs) if self.optimal.shape[0] > 1 else 0]
        eps = self.epsilon()
        return eps / self.n_actions + (1.0 - eps) * best / best.sum()

    def observe(self, transition: Transition, *, intervention: bool = True) -> None:
        if transition.done:
            self.episode += 1

    def weights(self) -> dict[str, np.ndarray]:
        return {"episode": np.array([self.episode])}

    def load_weights(self, w: dict[str, np.ndarray]) -> None:
        self.episode = int(np.asarray(w["episode"])[0])

    def get_state(self) -> dict[str, Any]:
        return {"episode": self.episode, "rng": self.rng_state()}

    def set_state(self, s: dict[str, Any]) -> None:
        self.episode = int(s["episode"])
        self.set_rng_state(s["rng"])


__all__ = ["NoisyOptimal", "NoisyOptimalConfig"]
