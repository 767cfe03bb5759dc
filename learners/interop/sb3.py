"""Record a Stable-Baselines3 DQN run as a ``LearningHistory`` (``pip install -e '.[sb3]'``).

    import envs
    from stable_baselines3 import DQN
    from learners.interop.sb3 import DQNHistoryCallback

    model = DQN("MlpPolicy", "hypospace/DarkRoom-v0", learning_starts=500, seed=0)
    cb = DQNHistoryCallback(snapshot_every=1000)
    model.learn(3000, callback=cb)
    history = cb.history                   # exact epsilon-greedy teacher_probs, Q-values, snapshots

What SB3 (2.x) draws, read from its source (``OffPolicyAlgorithm._sample_action`` and
``DQN.predict``): while ``num_timesteps < learning_starts`` the action is
``action_space.sample()`` (uniform); after that, with probability ``model.exploration_rate``
uniform again, else ``q_net(obs).argmax()`` -- torch's argmax, the *first* maximal index on ties.
``exploration_rate`` is updated by ``DQN._on_step`` *after* the callback, so the callback reads
the rate the action was drawn with (also SB3's initial 0.0 when ``learning_starts`` is 0). Between
drawing an action and the callback the Q-network does not change (gradient steps run after the
rollout), so the Q-values the callback computes are the ones SB3 acted on. Only one environment
(``n_envs == 1``) and ``Discrete`` actions; observations are stored as the env returned them.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import stable_baselines3
import torch as th
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback

from learners import HistoryError, LearningHistory
from learners.interop.recorder import EpsilonGreedyRecorder, epsilon_greedy_probs
from learners.protocols import SampledAgent, Transition
from learners.provenance import run_info

TEACHER_NAME = "sb3_dqn"
#: DQN hyperparameters stored in the history's teacher config.
CONFIG_FIELDS = ("learning_rate", "buffer_size", "learning_starts", "batch_size", "tau", "gamma", "gradient_steps",
                 "target_update_interval", "exploration_fraction", "exploration_initial_eps",
                 "exploration_final_eps", "max_grad_norm")


def q_values(model: Any, obs: Any) -> np.ndarray:
    """The DQN's Q-values for one (batched, as SB3 holds it) observation, as SB3 computes them."""
    with th.no_grad():
        t, _ = model.policy.obs_to_tensor(obs)
        return model.q_net(t)[0].cpu().numpy()


def step_probs(model: Any, obs: Any, step: int) -> tuple[np.ndarray, np.ndarray, float]:
    """(distribution, Q-values, epsilon) of the action SB3 draws at global ``step`` for ``obs``."""
    q = q_values(model, obs)
    eps = 1.0 if step < model.learning_starts else float(model.exploration_rate)
    return epsilon_greedy_probs(q, eps, ties="first"), q, eps


class DQNHistoryCallback(BaseCallback):
    """An SB3 callback that records the run; ``self.history`` once ``learn`` returns.

    ``snapshot_every``: store the Q-network's weights (its ``state_dict``) before acting at every
    multiple of this step (and at step 0). ``metadata``: merged into the history's metadata.
    """

    def __init__(self, *, snapshot_every: int | None = None, metadata: Mapping[str, Any] | None = None,
                 verbose: int = 0):
        super().__init__(verbose)
        if snapshot_every is not None and int(snapshot_every) < 1:
            raise ValueError(f"snapshot_every must be >= 1, got {snapshot_every}")
        self.snapshot_every = None if snapshot_every is None else int(snapshot_every)
        self.extra_metadata = dict(metadata or {})
        self.recorder: EpsilonGreedyRecorder | None = None
        self.history: LearningHistory | None = None

    def _on_training_start(self) -> None:
        m = self.model
        if not hasattr(m, "q_net") or not hasattr(m, "exploration_rate"):
            raise HistoryError(f"DQNHistoryCallback records DQN runs; got {type(m).__name__}")
        if m.n_envs != 1:
            raise HistoryError(f"DQNHistoryCallback records one environment; the model has n_envs={m.n_envs}")
        if not isinstance(m.action_space, spaces.Discrete):
            raise HistoryError(f"DQNHistoryCallback needs Discrete actions, got {m.action_space}")
        if m.get_vec_normalize_env() is not None:
            raise HistoryError("DQNHistoryCallback does not record VecNormalize runs (stored and acted-on observations differ)")
        if int(m.action_space.start) != 0:
            raise HistoryError(f"DQNHistoryCallback needs actions starting at 0, got {m.action_space}")
        if self.recorder is None:  # a second learn(..., reset_num_timesteps=False) continues the history
            self.recorder = EpsilonGreedyRecorder(int(m.action_space.n), ties="first")

    def _on_step(self) -> bool:
        m, rec = self.model, self.recorder
        step = int(m.num_timesteps) - 1    # collect_rollouts counts the step before calling back
        if step != len(rec):
            raise HistoryError(f"SB3 step {step} but {len(rec)} steps recorded: the callback missed steps "
                               "(record from the first learn() call, one environment)")
        if self.snapshot_every is not None and step % self.snapshot_every == 0:
            rec.snapshot({k: v.detach().cpu().numpy() for k, v in m.q_net.state_dict().items()})
        obs = m._last_obs   # the observation SB3 acted on (updated only after this callback)
        p, q, eps = step_probs(m, obs, step)
        done = bool(self.locals["dones"][0])
        info = self.locals["infos"][0]
        truncated = done and bool(info.get("TimeLimit.truncated", False))
        nxt = info["terminal_observation"] if done else self.locals["new_obs"][0]
        rec.record(obs[0], self.locals["actions"][0], self.locals["rewards"][0], done and not truncated, truncated,
                   nxt, epsilon=eps, q_values=q)
        return True

    def _on_training_end(self) -> None:
        self.history = self.recorder.to_history(self._metadata())

    def _metadata(self) -> dict[str, Any]:
        m = self.model
        env = m.get_env()
        spec = getattr(env.envs[0], "spec", None) if hasattr(env, "envs") else None
        config = {"teacher": TEACHER_NAME, "policy": type(m.policy).__name__,
                  "train_freq": [int(m.train_freq.frequency), str(m.train_freq.unit.value)]}
        for f in CONFIG_FIELDS:
            v = getattr(m, f, None)
            config[f] = v if isinstance(v, (int, float, str, type(None))) else repr(v)
        meta: dict[str, Any] = {
            "env_id": None if spec is None else spec.id,
            "env_kwargs": {} if spec is None else dict(spec.kwargs),
            "teacher": config,
            "seed": m.seed,
            "recorded_by": "learners.interop.sb3.DQNHistoryCallback",
            "provenance": run_info(seed=m.seed, config=config),
        }
        meta["provenance"]["versions"]["stable-baselines3"] = stable_baselines3.__version__
        meta.update(self.extra_metadata)
        return meta


class FrozenDQN(SampledAgent):
    """Control imitator: an SB3 DQN as it is now, acting epsilon-greedily with fixed ``epsilon``;
    it never learns (the SB3 counterpart of ``experiments.protocol.FrozenTeacher``)."""

    def __init__(self, model: Any, epsilon: float | None = None, seed: int | None = 0):
        self.model = model
        self.epsilon = float(model.exploration_final_eps if epsilon is None else epsilon)
        self.n_actions = int(model.action_space.n)
        self.rng = np.random.default_rng(seed)

    def action_probs(self, obs: Any) -> np.ndarray:
        return epsilon_greedy_probs(q_values(self.model, np.asarray(obs)[None]), self.epsilon, ties="first")

    def observe(self, transition: Transition, *, intervention: bool = True) -> None:
        pass  # frozen


__all__ = ["DQNHistoryCallback", "FrozenDQN", "q_values", "step_probs", "TEACHER_NAME"]
