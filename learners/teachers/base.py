"""What every teacher shares: a typed config, a seeded generator, and a registry entry.

A teacher is built from the env's spaces, a config dataclass and a seed::

    teacher = make_teacher("q_learning", env.observation_space, env.action_space, seed=0,
                           epsilon=0.1, alpha=0.25)

Config dataclasses document every field with ``field(metadata={"help": ...})``; the CLI turns
those into ``--flags`` and ``--help`` text, so a field's help is its documentation.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import gymnasium as gym
import numpy as np

from learners.protocols import SampledAgent, Transition


def opt(default: Any, help: str, **kw: Any) -> Any:
    """A config field with help text (shown by ``--help``)."""
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={"help": help, **kw})
    return dataclasses.field(default=default, metadata={"help": help, **kw})


def finite_number(name: str, value: Any) -> float:
    """``value`` as a float, or a ValueError naming the config field ``name`` (booleans, strings
    and non-finite values are refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return v


class TeacherBase(SampledAgent):
    """Base for teachers: ``act`` draws from ``action_probs`` with ``self.rng``.

    Subclasses set ``name``, ``Config``, implement ``action_probs``, ``observe``, ``weights``,
    ``load_weights`` and ``values``."""

    name: ClassVar[str] = ""
    Config: ClassVar[type] = object
    n_actions: int

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, config: Any, seed: int | None):
        if not isinstance(action_space, gym.spaces.Discrete):
            raise TypeError(f"{self.name}: needs a Discrete action space, got {action_space}")
        self.observation_space = observation_space
        self.action_space = action_space
        self.n_actions = int(action_space.n)
        self.cfg = config
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def config(self) -> dict[str, Any]:
        return {"teacher": self.name, "seed": self.seed, **dataclasses.asdict(self.cfg)}

    def observe(self, transition: Transition, *, intervention: bool = True) -> None:  # pragma: no cover
        raise NotImplementedError

    def values(self, obs: Any) -> np.ndarray | None:
        return None

    # RNG state is part of a teacher's resumable state (not of its weights).
    def rng_state(self) -> dict[str, Any]:
        return self.rng.bit_generator.state

    def set_rng_state(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state


@dataclass(frozen=True)
class TeacherSpec:
    name: str
    cls: type
    summary: str
    env_kinds: tuple[str, ...]  # "tabular" (Discrete obs), "bandit", "vector", "pixels"


TEACHERS: dict[str, TeacherSpec] = {}


def register_teacher(name: str, summary: str, env_kinds: tuple[str, ...]) -> Callable[[type], type]:
    def deco(cls: type) -> type:
        cls.name = name
        TEACHERS[name] = TeacherSpec(name, cls, summary, env_kinds)
        return cls

    return deco


def make_teacher(name: str, observation_space: gym.Space, action_space: gym.Space, seed: int | None = 0,
                 config: Any | None = None, **options: Any) -> TeacherBase:
    """Build a registered teacher; ``options`` override fields of its config dataclass."""
    import learners.teachers  # noqa: F401  (registers every teacher)

    if name not in TEACHERS:
        raise KeyError(f"unknown teacher {name!r}; known: {', '.join(sorted(TEACHERS))}")
    cls = TEACHERS[name].cls
    if config is None:
        fields = {f.name for f in dataclasses.fields(cls.Config)}
        unknown = set(options) - fields
        if unknown:
            raise TypeError(f"{name}: unknown option(s) {sorted(unknown)}; options are {sorted(fields)}")
        config = cls.Config(**options)
    elif options:
        config = dataclasses.replace(config, **options)
    return cls(observation_space, action_space, config, seed)
