"""What every toy env shares: task kwargs that ``reset(options=...)`` may switch, exact
checkpoints (``get_state`` / ``set_state``) and the argument checks.

A toy env's *task* is its constructor kwargs (``env.task`` returns them as a JSON-ready dict, so
``gym.make(env_id, **env.unwrapped.task)`` rebuilds the same task). Kwargs that fix the spaces
(grid size, number of arms, chain length) cannot change after construction; the rest can be
switched between episodes with ``env.reset(options={...})``, which accepts any subset of the
task kwargs -- a full task dict from ``envs.tasks.task_split`` included, as long as its
space-fixing kwargs equal the env's.

``get_state()`` returns a JSON-serialisable dict holding the task, the position within the
episode and the bit-generator state of ``np_random``; ``set_state(state)`` on an env built with
the same space-fixing kwargs makes it continue bit-identically. Through ``gym.make`` wrappers use
``env.unwrapped.get_state()`` or ``env.get_wrapper_attr("get_state")()``; a ``gym.make`` env
also needs one ``reset()`` before ``set_state`` (gymnasium's OrderEnforcing wrapper refuses a
step before the first reset), whose effect ``set_state`` then overwrites entirely.

Stepping after the episode ended (terminated or truncated) without ``reset()`` raises
RuntimeError: a recorder that forgot to reset would otherwise write a corrupt history.
"""
from __future__ import annotations

import math
import operator
from typing import Any

import gymnasium as gym
import numpy as np


class ToyEnv(gym.Env):
    """Base of the ``hypospace/`` toy envs (not registered itself)."""

    metadata = {"render_modes": ["ansi"], "render_fps": 4}
    #: kwargs that fix the observation/action spaces: reset options and set_state must match them
    FIXED_KWARGS: tuple[str, ...] = ()
    #: kwargs that ``reset(options=...)`` may change between episodes
    TASK_KWARGS: tuple[str, ...] = ()

    def __init__(self, render_mode: str | None = None):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode={render_mode!r} is not one of {self.metadata['render_modes']}")
        self.render_mode = render_mode
        self._done = True  # an episode must be started with reset()

    # ---- to be provided by each env -------------------------------------------------------
    @property
    def task(self) -> dict[str, Any]:
        """All constructor kwargs of the current task (JSON-serialisable)."""
        raise NotImplementedError

    def _configure(self, kwargs: dict[str, Any]) -> None:
        """Validate a full set of task kwargs and apply them (all or nothing)."""
        raise NotImplementedError

    def _start_episode(self, seeded: bool) -> Any:
        """Start an episode; return the first observation."""
        raise NotImplementedError

    def _dynamic_state(self) -> dict[str, Any]:
        raise NotImplementedError

    def _set_dynamic_state(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def _render_text(self) -> str:
        raise NotImplementedError

    # ---- gymnasium API --------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if options:
            self._switch_task(options)
        self.np_random  # noqa: B018  (creates the generator if the env was never seeded)
        obs = self._start_episode(seeded=seed is not None)
        self._done = False
        return obs, {}

    def render(self):
        if self.render_mode == "ansi":
            return self._render_text()
        return None

    # ---- task switching -------------------------------------------------------------------
    def _switch_task(self, options: dict[str, Any]) -> None:
        allowed = self.FIXED_KWARGS + self.TASK_KWARGS
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise ValueError(
                f"reset option(s) {unknown} are not task kwargs of {type(self).__name__} "
                f"(expected some of {list(allowed)})")
        self._check_fixed(options)
        changes = {k: options[k] for k in self.TASK_KWARGS if k in options}
        if changes:
            self._configure({**self.task, **changes})

    def _check_fixed(self, kwargs: dict[str, Any]) -> None:
        current = self.task
        for k in self.FIXED_KWARGS:
            if k in kwargs and kwargs[k] != current[k]:
                raise ValueError(
                    f"{k}={kwargs[k]!r} differs from this env's {k}={current[k]!r}; {k} fixes the "
                    f"spaces, so make a new env for it")

    # ---- checkpoints ----------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        """Everything needed to continue bit-identically (JSON-serialisable)."""
        rng = self._np_random
        return {
            "env": type(self).__name__,
            "task": self.task,
            "episode": self._dynamic_state(),
            "done": self._done,
            "np_random": None if rng is None else rng.bit_generator.state,
            "np_random_seed": self._np_random_seed,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Restore a ``get_state()`` dict (this env must have the same space-fixing kwargs)."""
        if state.get("env") != type(self).__name__:
            raise ValueError(f"state is of env {state.get('env')!r}, not {type(self).__name__}")
        task = dict(state["task"])
        self._check_fixed(task)
        self._configure(task)
        self._set_dynamic_state(state["episode"])
        self._done = bool(state["done"])
        rs = state["np_random"]
        if rs is None:
            self._np_random = None
        else:
            bit_generator = getattr(np.random, rs["bit_generator"])()
            bit_generator.state = rs
            self._np_random = np.random.Generator(bit_generator)
        self._np_random_seed = state["np_random_seed"]

    def _not_running(self) -> RuntimeError:
        return RuntimeError(f"{type(self).__name__}.step() called before reset() or after the episode "
                            "ended; call reset()")

    def _begin_step(self, action: Any) -> int:
        """What every ``step`` checks first: an episode is running and ``action`` is one of
        ``Discrete(n)``. Returns the action as an int."""
        if self._done:
            raise self._not_running()
        a = operator.index(action)
        n = int(self.action_space.n)
        if a < 0 or a >= n:
            raise ValueError(f"action {action!r} is not in Discrete({n})")
        return a

    def _end_step(self, terminated: bool = False) -> tuple[bool, bool]:
        """What every ``step`` does last: count the step, truncate at ``episode_len`` unless the
        episode terminated, and mark the episode over. Returns ``(terminated, truncated)``."""
        self._t += 1
        truncated = not terminated and self._t >= self.episode_len
        if terminated or truncated:
            self._done = True
        return bool(terminated), truncated


# ---- argument checks (one-line ValueErrors that name the kwarg) ----------------------------
def as_int(value: Any, name: str, *, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    try:
        v = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if low is not None and v < low:
        raise ValueError(f"{name}={v} must be >= {low}")
    if high is not None and v > high:
        raise ValueError(f"{name}={v} must be <= {high}")
    return int(v)


def as_float(value: Any, name: str, *, low: float | None = None, high: float | None = None) -> float:
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name}={v} must be finite")
    if low is not None and v < low:
        raise ValueError(f"{name}={v} must be >= {low}")
    if high is not None and v > high:
        raise ValueError(f"{name}={v} must be <= {high}")
    return v


def as_bool(value: Any, name: str) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    raise ValueError(f"{name} must be a bool, got {value!r}")


def as_cell(value: Any, name: str, size: int) -> tuple[int, int]:
    """A grid cell given as (row, col) or as the flat index row * size + col."""
    if isinstance(value, (list, tuple, np.ndarray)):
        if len(value) != 2:
            raise ValueError(f"{name} must be (row, col) or a flat cell index, got {value!r}")
        r, c = as_int(value[0], f"{name}[0]"), as_int(value[1], f"{name}[1]")
    else:
        try:
            flat = as_int(value, name)
        except ValueError:
            raise ValueError(f"{name} must be (row, col) or a flat cell index, got {value!r}") from None
        if not 0 <= flat < size * size:
            raise ValueError(f"{name}={flat} is outside the {size}x{size} grid (flat index 0..{size * size - 1})")
        r, c = divmod(flat, size)
    if not (0 <= r < size and 0 <= c < size):
        raise ValueError(f"{name}=({r}, {c}) is outside the {size}x{size} grid")
    return r, c


def grid_moves(size: int) -> tuple[tuple[int, ...], ...]:
    """moves[cell][action] -> next cell for actions 0 up, 1 right, 2 down, 3 left, 4 no-op,
    clipped at the walls (flat index row * size + col)."""
    table = []
    for cell in range(size * size):
        r, c = divmod(cell, size)
        table.append((
            max(r - 1, 0) * size + c,
            r * size + min(c + 1, size - 1),
            min(r + 1, size - 1) * size + c,
            r * size + max(c - 1, 0),
            cell,
        ))
    return tuple(table)


def render_grid(size: int, marks: dict[int, str], agent: int) -> str:
    rows = []
    for r in range(size):
        row = []
        for c in range(size):
            cell = r * size + c
            row.append("A" if cell == agent else marks.get(cell, "."))
        rows.append(" ".join(row))
    return "\n".join(rows) + "\n"


MOVES = ("up", "right", "down", "left", "no-op")
