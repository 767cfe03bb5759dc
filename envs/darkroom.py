"""Dark Room, the Algorithm Distillation task (Laskin et al. 2022).

A ``size`` x ``size`` grid (default 9). The agent starts every episode at the centre
``(size // 2, size // 2)`` and sees only its own cell: observation ``row * size + col`` in
``Discrete(size * size)``; the goal is invisible. Actions (``Discrete(5)``): 0 up, 1 right,
2 down, 3 left, 4 no-op; a move into a wall leaves the agent where it is.

Reward rule: step ``t`` pays 1 iff it *begins* on the goal, ``r_t = 1[pos_t == goal]`` where
``pos_t`` is the cell observed before the action of step ``t`` (the agent is rewarded for every
step it spends on the goal). Reaching the goal takes ``d = |dr| + |dc|`` moves, after which the
remaining ``episode_len - d`` steps all begin on it, so the optimal return is exactly
``episode_len - d`` (``20 - d`` by default; 0 if ``d > episode_len``).

Episodes end by truncation after ``episode_len`` steps; ``terminated`` is never set. The env
uses no randomness at all (the start is fixed), so a Dark Room history is random only through
its teacher.

Task kwargs: ``goal`` as ``(row, col)`` or flat index (default: the top-left corner (0, 0);
the start cell is refused) and ``episode_len``; ``reset(options={"goal": ...})`` switches the
goal. ``size`` (2.. ; 3..17 keeps every goal reachable within 20 steps) fixes the spaces.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from envs.base import ToyEnv, as_cell, as_int, grid_moves, render_grid


class DarkRoom(ToyEnv):
    FIXED_KWARGS = ("size",)
    TASK_KWARGS = ("goal", "episode_len")

    def __init__(self, size: int = 9, goal: Any = None, episode_len: int = 20, render_mode: str | None = None):
        super().__init__(render_mode)
        self.size = as_int(size, "size", low=2)
        self.start = (self.size // 2, self.size // 2)
        self._start_cell = self.start[0] * self.size + self.start[1]
        self._moves = grid_moves(self.size)
        self.observation_space = spaces.Discrete(self.size * self.size)
        self.action_space = spaces.Discrete(5)
        self._configure({"size": self.size,
                         "goal": (0, 0) if goal is None else goal,
                         "episode_len": episode_len})
        self._cell = self._start_cell
        self._t = 0

    # ---- task -----------------------------------------------------------------------------
    @property
    def task(self) -> dict[str, Any]:
        return {"size": self.size, "goal": list(self.goal), "episode_len": self.episode_len}

    def _configure(self, kwargs: dict[str, Any]) -> None:
        goal = as_cell(kwargs["goal"], "goal", self.size)
        if goal == self.start:
            raise ValueError(f"goal={goal} is the start cell (the centre of the {self.size}x{self.size} grid)")
        episode_len = as_int(kwargs["episode_len"], "episode_len", low=1)
        self.goal, self.episode_len = goal, episode_len
        self._goal_cell = goal[0] * self.size + goal[1]

    def optimal_return(self) -> float:
        """``episode_len - manhattan(start, goal)`` (0 if the goal is out of reach)."""
        d = abs(self.goal[0] - self.start[0]) + abs(self.goal[1] - self.start[1])
        return float(max(0, self.episode_len - d))

    def optimal_actions(self) -> np.ndarray:
        """``[size * size, 5]`` bool: the actions on a shortest path to the goal from each cell
        (on the goal itself, those that stay on it)."""
        moves = np.asarray(self._moves)  # [S, 5]
        rows, cols = np.divmod(np.arange(self.size * self.size), self.size)
        dist = np.abs(rows - self.goal[0]) + np.abs(cols - self.goal[1])
        nd = dist[moves]  # distance after each action
        return nd == np.minimum(nd.min(1, keepdims=True), dist[:, None])

    # ---- dynamics -------------------------------------------------------------------------
    def _start_episode(self, seeded: bool) -> int:
        self._cell = self._start_cell
        self._t = 0
        return self._cell

    def step(self, action):
        a = self._begin_step(action)
        cell = self._cell
        reward = 1.0 if cell == self._goal_cell else 0.0  # the step BEGINS on the goal
        cell = self._moves[cell][a]
        self._cell = cell
        terminated, truncated = self._end_step()
        return cell, reward, terminated, truncated, {}

    # ---- state ----------------------------------------------------------------------------
    @property
    def pos(self) -> tuple[int, int]:
        return divmod(self._cell, self.size)

    def _dynamic_state(self) -> dict[str, Any]:
        return {"cell": self._cell, "t": self._t}

    def _set_dynamic_state(self, state: dict[str, Any]) -> None:
        self._cell = as_int(state["cell"], "state cell", low=0, high=self.size * self.size - 1)
        self._t = as_int(state["t"], "state t", low=0)

    def _render_text(self) -> str:
        return render_grid(self.size, {self._goal_cell: "G"}, self._cell)
