"""k-armed Bernoulli bandit, one pull per episode.

Observation space ``Discrete(1)`` (the observation is always 0: a bandit has no state);
action space ``Discrete(n_arms)``. Pulling arm ``a`` pays 1.0 with probability ``means[a]``
and 0.0 otherwise, drawn as ``np_random.random() < means[a]`` (exactly one uniform per pull).
Every step ends the episode (``terminated=True``), so an episode is one pull and a bandit
learning history is a sequence of one-step episodes. ``info["regret"]`` is the expected regret
of the pull, ``max(means) - means[a]``.

The task is the vector of arm means:

* ``means=[...]`` (2..64 arms tested, each in [0, 1]) fixes it;
* ``n_arms=k`` alone (default 10) leaves it to the env: the means are drawn i.i.d. U[0, 1] with
  the env's ``np_random`` at the first ``reset`` and again at every ``reset(seed=...)``, so a
  given seed always gives the same bandit and the same reward stream; unseeded resets keep them.
  ``env.unwrapped.means`` shows them (once drawn) and ``env.unwrapped.task`` then fully
  specifies the bandit.

``reset(options={"means": [...]})`` switches to another bandit with the same number of arms.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from envs.base import ToyEnv, as_float, as_int


class BernoulliBandit(ToyEnv):
    FIXED_KWARGS = ("n_arms",)
    TASK_KWARGS = ("means",)

    def __init__(self, means: Any = None, n_arms: int | None = None, render_mode: str | None = None):
        super().__init__(render_mode)
        if means is not None:
            try:
                k = len(means)
            except TypeError:
                raise ValueError(f"means must be a list of arm means, got {means!r}") from None
            if n_arms is not None and as_int(n_arms, "n_arms") != k:
                raise ValueError(f"n_arms={n_arms} does not match len(means)={k}")
            n_arms = k
        self.n_arms = as_int(10 if n_arms is None else n_arms, "n_arms", low=2)
        self.observation_space = spaces.Discrete(1)
        self.action_space = spaces.Discrete(self.n_arms)
        self.means: list[float] | None = None
        self._configure({"n_arms": self.n_arms, "means": means})

    # ---- task -----------------------------------------------------------------------------
    @property
    def task(self) -> dict[str, Any]:
        return {"n_arms": self.n_arms, "means": None if self.means is None else list(self.means)}

    def _configure(self, kwargs: dict[str, Any]) -> None:
        means = kwargs["means"]
        if means is None:  # the env draws the means at the next reset
            self._draw_means = True
            self.means = None
            return
        try:
            values = list(means)
        except TypeError:
            raise ValueError(f"means must be a list of arm means, got {means!r}") from None
        if len(values) != self.n_arms:
            raise ValueError(f"means has {len(values)} arms, this bandit has n_arms={self.n_arms}")
        values = [as_float(m, f"means[{i}]", low=0.0, high=1.0) for i, m in enumerate(values)]
        self._draw_means = False
        self._set_means(values)

    def _set_means(self, values: list[float]) -> None:
        self.means = values
        self._best = max(values)

    def optimal_return(self) -> float:
        """Expected reward of the best arm (per pull, i.e. per episode)."""
        if self.means is None:
            raise ValueError("means are not set yet (give means=... or reset the env to draw them)")
        return float(self._best)

    def optimal_actions(self) -> np.ndarray:
        """``[1, n_arms]`` bool: the arms of the highest mean (the one observation's best actions)."""
        if self.means is None:
            raise ValueError("means are not set yet (give means=... or reset the env to draw them)")
        m = np.asarray(self.means, float)
        return (m == m.max())[None, :]

    # ---- dynamics -------------------------------------------------------------------------
    def _start_episode(self, seeded: bool) -> int:
        if self._draw_means and (seeded or self.means is None):
            self._set_means(self._np_random.random(self.n_arms).tolist())
        return 0

    def step(self, action):
        a = self._begin_step(action)
        mean = self.means[a]
        reward = 1.0 if self._np_random.random() < mean else 0.0
        self._done = True
        return 0, reward, True, False, {"regret": self._best - mean}

    # ---- state ----------------------------------------------------------------------------
    def _dynamic_state(self) -> dict[str, Any]:
        return {"draw_means": self._draw_means}

    def _set_dynamic_state(self, state: dict[str, Any]) -> None:
        self._draw_means = bool(state["draw_means"])

    def _render_text(self) -> str:
        means = "not drawn yet" if self.means is None else " ".join(f"{m:.3f}" for m in self.means)
        return f"Bernoulli bandit, {self.n_arms} arms, means: {means}\n"
