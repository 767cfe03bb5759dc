"""The two protocols everything that acts or imitates implements.

An ``Agent`` acts and observes. The loop that drives any agent, teacher or imitator alike::

    probs  = agent.action_probs(obs)        # exact distribution of the next action
    action = agent.act(obs)                 # one draw from exactly that distribution
    next_obs, reward, terminated, truncated, _ = env.step(action)
    agent.observe(Transition(obs, action, reward, next_obs, terminated, truncated),
                  intervention=...)

``action_probs`` must not change the agent's state, so it may be called any number of times
before ``act``; ``act(obs)`` draws from ``action_probs(obs)`` with the agent's own seeded
generator (see ``SampledAgent``). ``observe`` is the only call that changes what the agent
knows or has learnt.

An ``Imitator`` is an agent whose ``action_probs`` is its prediction of the *teacher's* next
action given the history shown so far. The ``intervention`` flag of ``observe`` says who chose
the action:

* ``intervention=False`` (teacher-forced): the action is the teacher's; it is evidence about
  the teacher and a Bayesian imitator reweights its beliefs by it.
* ``intervention=True`` (closed loop): the imitator chose the action itself. Its own action
  carries no information about the teacher, so it must not update beliefs *about the teacher*
  from it; it still advances whatever internal state the action and its consequences drive
  (a hypothesised learner's value table learns from the transition it caused; a transformer
  appends the step to its context, which is how Algorithm Distillation acts).

Teachers ignore the flag: a learner learns from its own transitions either way.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True, slots=True)
class Transition:
    """One environment step, as seen by the agent that acted."""

    obs: Any
    action: int
    reward: float
    next_obs: Any
    terminated: bool
    truncated: bool

    @property
    def done(self) -> bool:
        return bool(self.terminated or self.truncated)


@runtime_checkable
class Agent(Protocol):
    """Anything that acts in an environment (teachers, imitators, controls)."""

    n_actions: int

    def action_probs(self, obs: Any) -> np.ndarray:
        """Exact probabilities of each action at ``obs`` (shape ``[n_actions]``, sums to 1).

        Pure: does not change the agent's state."""
        ...

    def act(self, obs: Any) -> int:
        """Draw one action from ``action_probs(obs)`` with the agent's own generator."""
        ...

    def observe(self, transition: Transition, *, intervention: bool = True) -> None:
        """Take in the step that followed the last action (the only state-changing call)."""
        ...


@runtime_checkable
class Imitator(Agent, Protocol):
    """An agent that predicts a teacher's next action from the history shown so far.

    ``action_probs`` is the predictive distribution of the teacher's next action; ``observe``
    with ``intervention=False`` shows it the teacher's step. It may also offer
    ``predict_history(history) -> np.ndarray[T, A]`` as a fast path for teacher-forced
    evaluation; ``experiments.protocol.teacher_forced`` checks it against the step loop in tests.
    """


@runtime_checkable
class Teacher(Agent, Protocol):
    """A learner whose whole learning history we record.

    ``weights()`` returns a snapshot of everything its behaviour depends on (value tables,
    counts, network parameters) as a flat ``{name: np.ndarray}``; ``load_weights`` restores it.
    ``values(obs)`` returns the action values the teacher acts on (for ``teacher_values``), or
    ``None`` if it has none."""

    def weights(self) -> dict[str, np.ndarray]: ...

    def load_weights(self, weights: dict[str, np.ndarray]) -> None: ...

    def values(self, obs: Any) -> np.ndarray | None: ...

    def config(self) -> dict[str, Any]: ...


def sample_action(probs: np.ndarray, rng: np.random.Generator) -> int:
    """Inverse-CDF draw of one action from ``probs`` using exactly one uniform from ``rng``.

    One uniform per step keeps generator streams aligned across agents, which makes runs
    reproducible and comparable."""
    u = rng.random()
    cdf = np.cumsum(probs)
    a = int(np.searchsorted(cdf, u * cdf[-1], side="right"))
    # Guard the float edge u*cdf[-1] == cdf[-1]; and never return an action of probability 0.
    a = min(a, len(probs) - 1)
    while probs[a] <= 0.0:
        a -= 1
    return a


class SampledAgent:
    """Mixin: ``act`` draws from ``action_probs`` with ``self.rng`` (one uniform per step)."""

    rng: np.random.Generator

    def act(self, obs: Any) -> int:
        return sample_action(self.action_probs(obs), self.rng)
