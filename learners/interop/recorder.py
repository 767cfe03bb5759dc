"""Record any epsilon-greedy training loop (CleanRL-style) as a ``LearningHistory``.

The loop calls ``record`` once per environment step with what it acted on (the observation,
the Q-values of the greedy branch and the epsilon of that step) and what came back; the recorder
stores the *exact* distribution the action was drawn from::

    rec = EpsilonGreedyRecorder(n_actions=envs.single_action_space.n, metadata={"env_id": env_id})
    obs, _ = envs.reset(seed=seed)
    for global_step in range(total_timesteps):
        epsilon = linear_schedule(start_e, end_e, exploration_fraction * total_timesteps, global_step)
        q_values = q_network(torch.Tensor(obs))                 # every step, also when exploring
        if random.random() < epsilon:
            actions = np.array([envs.single_action_space.sample()])
        else:
            actions = torch.argmax(q_values, dim=1).cpu().numpy()
        next_obs, rewards, terminations, truncations, infos = envs.step(actions)
        real_next = infos["final_obs"][0] if (terminations[0] or truncations[0]) else next_obs[0]
        rec.record(obs[0], actions[0], rewards[0], terminations[0], truncations[0], real_next,
                   epsilon=epsilon, q_values=q_values[0].detach().numpy())
        obs = next_obs
    rec.to_history().save("runs/cleanrl_dqn")

With probability ``epsilon`` the action is uniform over all ``A`` actions (the greedy one
included), otherwise greedy, so ``p(a) = epsilon / A + (1 - epsilon) [a = greedy]``. Ties in the
Q-values are broken as ``torch.argmax`` and ``np.argmax`` break them, by the first maximal index
(``ties="first"``, CleanRL and Stable-Baselines3); ``ties="uniform"`` spreads ``1 - epsilon``
over all maximal actions. A warm-up phase that acts uniformly before learning starts is recorded
with ``epsilon=1.0``. The Q-values are needed on every step with ``epsilon < 1``, also on steps
that explored: the distribution depends on the greedy action whichever branch was taken.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from learners import HistoryError, LearningHistory

TIES = ("first", "uniform")


def epsilon_greedy_probs(q_values: Any, epsilon: float, *, ties: str = "first") -> np.ndarray:
    """The exact epsilon-greedy distribution over actions for one row of Q-values (float64)."""
    q = np.asarray(q_values, dtype=np.float64).reshape(-1)
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}, got {ties!r}")
    eps = float(epsilon)
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"epsilon {epsilon!r} outside [0, 1]")
    if q.size == 0 or not np.all(np.isfinite(q)):
        raise ValueError(f"q_values must be a non-empty finite row, got {q}")
    A = q.size
    p = np.full(A, eps / A)
    if ties == "first":
        p[int(np.argmax(q))] += 1.0 - eps
    else:
        best = q == q.max()
        p[best] += (1.0 - eps) / int(best.sum())
    return p


class EpsilonGreedyRecorder:
    """Collects the steps of one epsilon-greedy run; ``to_history()`` makes the history.

    ``record_values``: store the Q-values as ``teacher_values`` (then every step needs them).
    ``snapshot(weights)`` stores the learner's weights as they are before the next recorded step.
    """

    def __init__(self, n_actions: int, *, ties: str = "first", record_values: bool = True,
                 metadata: Mapping[str, Any] | None = None):
        if int(n_actions) < 1:
            raise ValueError(f"n_actions must be >= 1, got {n_actions}")
        if ties not in TIES:
            raise ValueError(f"ties must be one of {TIES}, got {ties!r}")
        self.n_actions = int(n_actions)
        self.ties = ties
        self.record_values = bool(record_values)
        self.metadata = dict(metadata or {})
        self._obs: list[np.ndarray] = []
        self._action: list[int] = []
        self._reward: list[float] = []
        self._term: list[bool] = []
        self._trunc: list[bool] = []
        self._probs: list[np.ndarray] = []
        self._values: list[np.ndarray] = []
        self._segment: list[int] = []
        self._final: dict[int, np.ndarray] = {}
        self._last_next: np.ndarray | None = None
        self._snapshots: dict[int, dict[str, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self._action)

    def probs(self, q_values: Any, epsilon: float) -> np.ndarray:
        """The distribution this recorder stores for a step with these Q-values and epsilon."""
        if q_values is None:
            if float(epsilon) != 1.0:
                raise HistoryError(f"q_values missing at step {len(self)} with epsilon {epsilon}: "
                                   "the distribution needs the greedy action")
            return np.full(self.n_actions, 1.0 / self.n_actions)
        p = epsilon_greedy_probs(q_values, epsilon, ties=self.ties)
        if p.size != self.n_actions:
            raise HistoryError(f"q_values at step {len(self)} has {p.size} actions, the recorder {self.n_actions}")
        return p

    def record(self, obs: Any, action: Any, reward: Any, terminated: Any, truncated: Any, next_obs: Any, *,
               epsilon: float, q_values: Any = None, segment: int = 0) -> np.ndarray:
        """One step: ``action`` was drawn at ``obs`` with this ``epsilon`` and ``q_values``;
        ``next_obs`` is the observation that followed (the final one if the episode ended).
        Returns the stored distribution."""
        a = int(np.asarray(action).reshape(()))
        p = self.probs(q_values, epsilon)
        if not 0 <= a < self.n_actions:
            raise HistoryError(f"action {a} at step {len(self)} outside [0, {self.n_actions})")
        if p[a] <= 0.0:
            raise HistoryError(f"action {a} at step {len(self)} has probability 0 under epsilon {epsilon} "
                               f"(greedy {int(np.argmax(np.asarray(q_values, np.float64)))}): the loop did not act epsilon-greedily")
        if self.record_values:
            if q_values is None:
                raise HistoryError(f"q_values missing at step {len(self)} (record_values=True)")
            self._values.append(np.asarray(q_values).reshape(-1).copy())
        t = len(self)
        self._obs.append(np.array(obs, copy=True))
        self._action.append(a)
        self._reward.append(float(np.asarray(reward).reshape(())))
        self._term.append(bool(np.asarray(terminated).reshape(())))
        self._trunc.append(bool(np.asarray(truncated).reshape(())))
        self._probs.append(p)
        self._segment.append(int(segment))
        nxt = np.array(next_obs, copy=True)
        if self._term[-1] or self._trunc[-1]:
            self._final[t] = nxt
        self._last_next = nxt
        return p

    def snapshot(self, weights: Mapping[str, Any]) -> None:
        """The learner's weights now, i.e. before acting at the next recorded step."""
        self._snapshots[len(self)] = {k: np.array(np.asarray(v), copy=True) for k, v in weights.items()}

    def to_history(self, metadata: Mapping[str, Any] | None = None) -> LearningHistory:
        """The recorded run as a validated ``LearningHistory`` (the successor of the last step kept)."""
        T = len(self)
        if T == 0:
            raise HistoryError("no steps recorded")
        obs = np.stack(self._obs)
        final = dict(self._final)
        if (T - 1) not in final and self._last_next is not None:
            final[T - 1] = self._last_next
        values = None
        if self.record_values:
            values = np.stack(self._values)
            if values.dtype not in (np.float32, np.float64):
                values = values.astype(np.float64)
        snaps = {s: w for s, w in self._snapshots.items() if s <= T}
        return LearningHistory.from_arrays(
            obs=obs, action=np.array(self._action, np.int64), reward=np.array(self._reward),
            terminated=np.array(self._term), truncated=np.array(self._trunc),
            teacher_probs=np.stack(self._probs), teacher_values=values,
            segment=np.array(self._segment, np.int64),
            final_obs={s: np.asarray(o, dtype=obs.dtype) for s, o in final.items()},
            snapshots=snaps, metadata={**self.metadata, **(metadata or {})},
        )


__all__ = ["EpsilonGreedyRecorder", "epsilon_greedy_probs", "TIES"]
