"""Dark Key-to-Door (Algorithm Distillation, Laskin et al. 2022): fetch an invisible key, then
reach an invisible door.

A ``size`` x ``size`` grid (default 9) with the Dark Room moves: ``Discrete(5)``, 0 up, 1 right,
2 down, 3 left, 4 no-op, clipped at the walls. Each episode starts in a cell drawn uniformly
(with ``np_random``) from the cells other than the key and the door.

Observation: the agent's cell and whether it holds the key, encoded in
``Discrete(2 * size * size)`` as ``cell + size * size * has_key`` with ``cell = row * size + col``.

Rewards: +1 on the step whose *new* position is the key while the agent has no key (it picks
the key up); +1 on the step whose new position is the door while it holds the key, which
terminates the episode. Anything else pays 0 (the door without the key does nothing). The
episode is truncated after ``episode_len`` steps (default 50) unless it terminated on that
step (``truncated`` is set only when ``terminated`` is not). Best possible return: 2.

Task kwargs: ``key`` and ``door`` as ``(row, col)`` or flat index, distinct (defaults: the
top-right and bottom-left corners), and ``episode_len``; ``reset(options={"key": ...,
"door": ...})`` switches them. ``size`` (>= 2) fixes the spaces.
"""
from __future__ import annotations

from typing import Any

from gymnasium import spaces

from envs.base import ToyEnv, as_cell, as_int, grid_moves, render_grid


class DarkKeyToDoor(ToyEnv):
    FIXED_KWARGS = ("size",)
    TASK_KWARGS = ("key", "door", "episode_len")

    def __init__(self, size: int = 9, key: Any = None, door: Any = None, episode_len: int = 50,
                 render_mode: str | None = None):
        super().__init__(render_mode)
        self.size = as_int(size, "size", low=2)
        self._n_cells = self.size * self.size
        self._moves = grid_moves(self.size)
        self.observation_space = spaces.Discrete(2 * self._n_cells)
        self.action_space = spaces.Discrete(5)
        self._configure({"size": self.size,
                         "key": (0, self.size - 1) if key is None else key,
                         "door": (self.size - 1, 0) if door is None else door,
                         "episode_len": episode_len})
        self._cell = self._starts[0]
        self._has_key = 0
        self._t = 0

    # ---- task -----------------------------------------------------------------------------
    @property
    def task(self) -> dict[str, Any]:
        return {"size": self.size, "key": list(self.key), "door": list(self.door), "episode_len": self.episode_len}

    def _configure(self, kwargs: dict[str, Any]) -> None:
        key = as_cell(kwargs["key"], "key", self.size)
        door = as_cell(kwargs["door"], "door", self.size)
        if key == door:
            raise ValueError(f"key={key} and door={door} must be different cells")
        episode_len = as_int(kwargs["episode_len"], "episode_len", low=1)
        self.key, self.door, self.episode_len = key, door, episode_len
        self._key_cell = key[0] * self.size + key[1]
        self._door_cell = door[0] * self.size + door[1]
        self._starts = [c for c in range(self._n_cells) if c != self._key_cell and c != self._door_cell]

    def optimal_return(self) -> float:
        """Exact expected optimal return over the uniform random start.

        From start ``s`` the best an agent can do is walk a shortest path to the key
        (``d1 = manhattan(s, key)`` steps, reward at step ``d1``) and then to the door
        (``d2 = manhattan(key, door)`` more). So the return is 2 if ``d1 + d2 <= episode_len``,
        1 if only ``d1 <= episode_len``, else 0; averaged over the starts."""
        kr, kc = self.key
        d2 = abs(kr - self.door[0]) + abs(kc - self.door[1])
        total = 0
        for s in self._starts:
            r, c = divmod(s, self.size)
            d1 = abs(r - kr) + abs(c - kc)
            total += (d1 <= self.episode_len) + (d1 + d2 <= self.episode_len)
        return total / len(self._starts)

    # ---- dynamics -------------------------------------------------------------------------
    def _start_episode(self, seeded: bool) -> int:
        self._cell = self._starts[int(self._np_random.integers(len(self._starts)))]
        self._has_key = 0
        self._t = 0
        return self._cell

    def step(self, action):
        a = self._begin_step(action)
        cell = self._moves[self._cell][a]
        self._cell = cell
        reward = 0.0
        terminated = False
        if self._has_key:
            if cell == self._door_cell:
                reward = 1.0
                terminated = True
        elif cell == self._key_cell:
            reward = 1.0
            self._has_key = 1
        terminated, truncated = self._end_step(terminated)
        return cell + self._n_cells * self._has_key, reward, terminated, truncated, {}

    # ---- state ----------------------------------------------------------------------------
    @property
    def pos(self) -> tuple[int, int]:
        return divmod(self._cell, self.size)

    @property
    def has_key(self) -> bool:
        return bool(self._has_key)

    def _dynamic_state(self) -> dict[str, Any]:
        return {"cell": self._cell, "has_key": self._has_key, "t": self._t}

    def _set_dynamic_state(self, state: dict[str, Any]) -> None:
        self._cell = as_int(state["cell"], "state cell", low=0, high=self._n_cells - 1)
        self._has_key = as_int(state["has_key"], "state has_key", low=0, high=1)
        self._t = as_int(state["t"], "state t", low=0)

    def _render_text(self) -> str:
        marks = {self._door_cell: "D"}
        if not self._has_key:
            marks[self._key_cell] = "K"
        return render_grid(self.size, marks, self._cell) + f"has key: {bool(self._has_key)}\n"
