"""``dqn``: Deep Q-Networks (Mnih et al. 2015) with the CleanRL ``dqn_atari`` settings.

What it is, exactly (every number is a ``DQNConfig`` field, i.e. a ``--flag``):

* network: the Nature CNN (conv 32x8x8/4, 64x4x4/2, 64x3x3/1, fc 512; input uint8 / 255) on
  pixel stacks ``[k, 84, 84]``; an MLP (``mlp_hidden``, ReLU) on one-hot Discrete or vector
  observations, so the same teacher learns the toy envs;
* replay: uniform over the last ``buffer_size`` transitions, each 84x84 frame stored once and
  stacks rebuilt by index with episode boundaries respected (``learners.teachers.replay``);
* TD target ``r + gamma * max_a Q_target(s', a)`` (no bootstrap at ``terminated``; a time-limit
  truncation or a task switch bootstraps from the true final observation), rewards clipped to
  their sign for learning (``clip_rewards``; the history keeps the raw game score), MSE loss
  (CleanRL; ``loss=huber`` for the Nature/Dopamine choice), Adam (torch's fused kernel), hard target copy every
  ``target_update_every`` steps (``tau`` = 1);
* step ``s`` (0-based) trains when ``s > learning_starts`` and ``s % train_every == 0`` and
  copies the target when ``s % target_update_every == 0`` -- CleanRL's loop;
* ``epsilon`` falls linearly from ``start_epsilon`` to ``end_epsilon`` over the first
  ``exploration_fraction * total_steps`` steps.

``action_probs(obs)`` is exact: ``eps/A + (1 - eps) [a in G] / |G|`` with ``G`` the argmax set of
the float32 Q-values by exact equality (a tie shares the greedy mass; the tie-break is part of
the one uniform draw). ``values(obs)`` are the Q-values it acts on; ``action_probs_and_values``
gives both from one forward pass.

Defaults are CleanRL's Atari settings (buffer 10^6, learning starts 80k, train every 4, target
copy every 1k, batch 32, Adam 1e-4, gamma 0.99, eps 1 -> 0.01 over the first 10%); the presets
set the run-length fields for this 2-core machine: ``smoke`` (2k steps, tests), ``default``
(200k steps, a Breakout curve in ~1 hour), ``paper`` (10^6 steps, CleanRL's buffer and warm-up).
Documented differences from CleanRL: no ``EpisodicLifeEnv``/``FireResetEnv``/``NoopResetEnv``
(the env follows Machado et al. 2018, see ``envs.atari``), reward clipping done in the learner.

State for exact resume (``get_state``/``set_state``): both networks, Adam, the replay buffer,
step counters, epsilon's origin, the action RNG, the replay-sampling RNG and torch's RNG. With
``get_state(history_backed=True)`` (what the recorder asks for, since ``state_from_history`` is
set) the replay rows are left out and ``set_state(state, history=...)`` rebuilds them from the
recorded history's memory maps: the last 10^6 frames of a history *are* the buffer.

torch is imported lazily (the teacher registry, and every ``--help``, stay light).
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from learners.logger import MetricsLogger
from learners.protocols import Transition
from learners.teachers.base import TeacherBase, opt, register_teacher
from learners.teachers.replay import FrameReplay

#: Run-length settings of each preset (fields left at None take them).
PRESETS: dict[str, dict[str, int]] = {
    "smoke": {"total_steps": 2_000, "buffer_size": 2_000, "learning_starts": 500, "target_update_every": 200},
    "default": {"total_steps": 200_000, "buffer_size": 200_000, "learning_starts": 10_000, "target_update_every": 1_000},
    "paper": {"total_steps": 1_000_000, "buffer_size": 1_000_000, "learning_starts": 80_000, "target_update_every": 1_000},
}
LOSSES = ("mse", "huber")
NETWORKS = ("auto", "nature_cnn", "mlp")


@dataclass
class DQNConfig:
    """Hyper-parameters of the DQN teacher (every field is a ``--flag``; docstring of ``dqn``)."""

    preset: str = opt("default", "run-length settings: smoke (2k steps, tests), default (200k steps), "
                      "paper (10^6 steps, CleanRL buffer 10^6 / warm-up 80k); the four fields below "
                      "override it", choices=tuple(PRESETS))
    total_steps: int | None = opt(None, "steps the epsilon schedule is planned for (set it to the run length); "
                                  "unset = the preset's: smoke 2000, default 200000, paper 1000000")
    buffer_size: int | None = opt(None, "replay capacity in transitions (frames stored once); "
                                  "unset = the preset's: smoke 2000, default 200000, paper 1000000")
    learning_starts: int | None = opt(None, "steps of pure collection before the first update; "
                                      "unset = the preset's: smoke 500, default 10000, paper 80000")
    target_update_every: int | None = opt(None, "steps between target-network copies; "
                                          "unset = the preset's: smoke 200, default 1000, paper 1000")
    train_every: int = opt(4, "steps between gradient updates")
    batch_size: int = opt(32, "transitions per update")
    lr: float = opt(1e-4, "Adam learning rate")
    adam_eps: float = opt(1e-8, "Adam epsilon (torch default, as CleanRL)")
    gamma: float = opt(0.99, "discount factor")
    tau: float = opt(1.0, "target update rate (1 = hard copy)")
    start_epsilon: float = opt(1.0, "exploration epsilon at step 0")
    end_epsilon: float = opt(0.01, "final exploration epsilon")
    exploration_fraction: float = opt(0.1, "fraction of total_steps over which epsilon decays linearly")
    loss: str = opt("mse", "TD loss: mse (CleanRL) or huber (Nature DQN, Dopamine)", choices=LOSSES)
    clip_rewards: bool = opt(True, "learn from sign(reward) (the history records the raw reward)")
    network: str = opt("auto", "auto (Nature CNN for uint8 pixel stacks, MLP otherwise), nature_cnn or mlp",
                       choices=NETWORKS)
    mlp_hidden: list = opt([128, 128], "hidden layer widths of the MLP")
    on_switch_buffer: str = opt("keep", "at a task switch: keep or clear the replay buffer (a cleared buffer "
                                "refills learning_starts steps before training again)", choices=("keep", "clear"))
    on_switch_optimizer: str = opt("keep", "at a task switch: keep Adam's moments or reset them", choices=("keep", "reset"))
    on_switch_epsilon: str = opt("keep", "at a task switch: keep epsilon or restart its schedule", choices=("keep", "restart"))
    threads: int = opt(1, "torch CPU threads (1 measured faster than 2 on a shared 2-core machine)")
    device: str = opt("cpu", "torch device: cpu, cuda, cuda:N or mps")

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {tuple(PRESETS)}, got {self.preset!r}")
        for k, v in PRESETS[self.preset].items():
            if getattr(self, k) is None:
                setattr(self, k, v)
        ints = {"total_steps": 1, "buffer_size": 1, "learning_starts": 0, "target_update_every": 1,
                "train_every": 1, "batch_size": 1, "threads": 1}
        for k, low in ints.items():
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
                raise ValueError(f"{k} must be an integer >= {low}, got {v!r}")
            setattr(self, k, int(v))
        floats = {"lr": (0.0, None), "adam_eps": (0.0, None), "gamma": (0.0, 1.0), "tau": (0.0, 1.0),
                  "start_epsilon": (0.0, 1.0), "end_epsilon": (0.0, 1.0), "exploration_fraction": (0.0, 1.0)}
        for k, (lo, hi) in floats.items():
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v):
                raise ValueError(f"{k} must be a finite number, got {v!r}")
            v = float(v)
            if v < lo or (hi is not None and v > hi) or (k in ("lr", "tau") and v == 0.0):
                raise ValueError(f"{k} must be in {'(' if k in ('lr', 'tau') else '['}{lo}, {hi if hi is not None else 'inf'}], got {v}")
            setattr(self, k, v)
        for k, choices in (("loss", LOSSES), ("network", NETWORKS), ("on_switch_buffer", ("keep", "clear")),
                           ("on_switch_optimizer", ("keep", "reset")), ("on_switch_epsilon", ("keep", "restart"))):
            if getattr(self, k) not in choices:
                raise ValueError(f"{k} must be one of {choices}, got {getattr(self, k)!r}")
        hidden = list(self.mlp_hidden)
        if not hidden or any(isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h < 1 for h in hidden):
            raise ValueError(f"mlp_hidden must be a non-empty list of positive integers, got {self.mlp_hidden!r}")
        self.mlp_hidden = [int(h) for h in hidden]
        self.clip_rewards = bool(self.clip_rewards)


def _torch() -> Any:
    """torch, imported on first use (the registry and every ``--help`` stay light)."""
    import torch

    return torch


def _obs_kind(space: gym.Space) -> tuple[str, tuple[int, ...], Any, int]:
    """(kind, frame shape, frame dtype, stack) of an observation space."""
    if isinstance(space, gym.spaces.Discrete):
        return "onehot", (), np.int64, 1
    if isinstance(space, gym.spaces.Box):
        if space.dtype == np.uint8 and len(space.shape) == 3:
            return "pixels", tuple(space.shape[1:]), np.uint8, int(space.shape[0])
        if space.dtype == np.uint8 and len(space.shape) == 2:
            return "pixels", tuple(space.shape), np.uint8, 1
        if len(space.shape) == 1:
            return "vector", tuple(space.shape), np.float32, 1
    raise TypeError(f"dqn: cannot encode observations of {space} (Discrete, a 1-D Box, or uint8 [k, H, W] frames)")


def _build_network(torch: Any, kind: str, network: str, obs_shape: tuple[int, ...], in_dim: int, n_actions: int,
                   hidden: list[int]) -> Any:
    nn = torch.nn
    if network == "auto":
        network = "nature_cnn" if kind == "pixels" else "mlp"
    if network == "nature_cnn":
        if kind != "pixels":
            raise ValueError("network nature_cnn needs uint8 pixel observations")
        c, h, w = obs_shape
        convs = nn.Sequential(nn.Conv2d(c, 32, 8, stride=4), nn.ReLU(), nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
                              nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(), nn.Flatten())
        with torch.no_grad():
            flat = convs(torch.zeros(1, c, h, w)).shape[1]
        return nn.Sequential(*convs, nn.Linear(flat, 512), nn.ReLU(), nn.Linear(512, n_actions))
    layers: list[Any] = [nn.Flatten()] if kind == "pixels" else []
    d = in_dim
    for width in hidden:
        layers += [nn.Linear(d, width), nn.ReLU()]
        d = width
    layers.append(nn.Linear(d, n_actions))
    return nn.Sequential(*layers)


@register_teacher("dqn", "DQN (Nature CNN on Atari pixels, MLP on one-hot/vector obs; CleanRL settings)",
                  ("pixels", "tabular", "vector"))
class DQN(TeacherBase):
    """Deep Q-learning teacher; see the module docstring."""

    Config: ClassVar[type] = DQNConfig
    #: The recorder may checkpoint this teacher without its replay rows and rebuild them from
    #: the recorded history on resume (``get_state(history_backed=True)``).
    state_from_history: ClassVar[bool] = True

    def __init__(self, observation_space: gym.Space, action_space: gym.Space, config: DQNConfig, seed: int | None):
        super().__init__(observation_space, action_space, config, seed)
        if not isinstance(config, DQNConfig):
            raise TypeError(f"dqn: config must be a DQNConfig, got {type(config).__name__}")
        torch = _torch()
        cfg = config
        torch.set_num_threads(cfg.threads)  # process-wide: a deliberate choice (see DQNConfig.threads)
        try:
            self.device = torch.device(cfg.device)
        except RuntimeError as e:
            raise ValueError(f"dqn: bad device {cfg.device!r} ({e})") from None
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"dqn: device {cfg.device!r} requested but CUDA is not available")
        if self.device.type == "mps" and not torch.backends.mps.is_available():
            raise ValueError(f"dqn: device {cfg.device!r} requested but MPS is not available")
        self.kind, frame_shape, frame_dtype, self.stack = _obs_kind(observation_space)
        if self.kind == "onehot":
            self._n_obs, self._obs_start = int(observation_space.n), int(observation_space.start)
            in_dim = self._n_obs
        else:
            in_dim = int(np.prod(observation_space.shape))
        self._net_obs_shape = (self.stack, *frame_shape) if self.kind == "pixels" else tuple(observation_space.shape)
        base = seed if seed is not None else int(np.random.SeedSequence().entropy % (1 << 63))
        torch_seed, replay_seed = np.random.SeedSequence([int(base), 0xD9]).generate_state(2)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch_seed))
            # Built inside fork_rng so the process's global torch RNG is left as it was.
            self.q = _build_network(torch, self.kind, cfg.network, self._net_obs_shape, in_dim, self.n_actions, cfg.mlp_hidden)
            self.target = _build_network(torch, self.kind, cfg.network, self._net_obs_shape, in_dim, self.n_actions, cfg.mlp_hidden)
        # channels_last: oneDNN's faster conv layout on CPU (measured: update 27 vs 35 ms, 1 thread).
        self._cl = self.kind == "pixels" and any(isinstance(m, torch.nn.Conv2d) for m in self.q.modules())
        fmt = torch.channels_last if self._cl else torch.contiguous_format
        self.q.to(self.device, memory_format=fmt)
        self.target.to(self.device, memory_format=fmt)
        self.target.load_state_dict(self.q.state_dict())
        for p in self.target.parameters():
            p.requires_grad_(False)
        self.optimizer = self._new_optimizer()
        self.replay = FrameReplay(cfg.buffer_size, frame_shape, frame_dtype, self.stack)
        self.replay_rng = np.random.default_rng(int(replay_seed))
        self.t = 0               # transitions observed (the step about to be acted on)
        self.eps_origin = 0      # step at which the epsilon schedule (re)started
        self.learn_origin = 0    # step after which learning_starts counts (moves when the buffer is cleared)
        self.n_updates = 0
        self.episode_return = 0.0
        self.episode_length = 0
        self.episodes = 0
        self.last_td_loss = float("nan")
        self.last_q = float("nan")
        self.logger: Any = None  # optional: DQNLog (not part of the state)

    def __deepcopy__(self, memo: dict) -> "DQN":
        """A full copy (networks, optimizer, replay, RNGs) without the attached logger."""
        new = object.__new__(type(self))
        memo[id(self)] = new
        for k, v in self.__dict__.items():
            # q and target come before the optimizer, so its copy points at the copied parameters.
            setattr(new, k, None if k == "logger" else copy.deepcopy(v, memo))
        return new

    def _new_optimizer(self) -> Any:
        # Fused Adam: the same update rule in one pass over each parameter (measured on this
        # machine: ~1 ms per step against 5-15 ms for the default per-tensor loop on 1 thread).
        torch = _torch()
        try:
            return torch.optim.Adam(self.q.parameters(), lr=self.cfg.lr, eps=self.cfg.adam_eps, fused=True)
        except (RuntimeError, ValueError, TypeError):  # a device without a fused kernel
            return torch.optim.Adam(self.q.parameters(), lr=self.cfg.lr, eps=self.cfg.adam_eps)

    # ------------------------------------------------------------------ observations
    def _frame(self, obs: Any) -> Any:
        """What the replay (and a history) stores for an observation."""
        if self.kind == "onehot":
            return int(obs) - self._obs_start
        if self.kind == "pixels" and self.stack > 1 and np.ndim(obs) == 3:
            return obs[-1]
        return obs

    def _history_frames(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows)
        if self.kind == "onehot":
            return rows.astype(np.int64) - self._obs_start
        if self.kind == "pixels" and self.stack > 1 and rows.ndim == 4:
            return rows[:, -1]
        return rows

    def _net_input(self, x: Any) -> Any:
        """Batch tensor of observations (uint8 stacks, Discrete indices or vectors) -> network input."""
        torch = _torch()
        if self.kind == "pixels":
            x = x.to(self.device, non_blocking=True).float().div_(255.0)
            if self.stack == 1 and x.dim() == 3:
                x = x.unsqueeze(1)
            return x.contiguous(memory_format=torch.channels_last) if self._cl else x
        if self.kind == "onehot":
            return torch.nn.functional.one_hot(x.to(self.device).long(), self._n_obs).float()
        return x.to(self.device).float()

    def _one(self, obs: Any) -> Any:
        torch = _torch()
        if self.kind == "onehot":
            s = int(obs) - self._obs_start
            if not 0 <= s < self._n_obs:
                raise ValueError(f"dqn: observation {obs!r} is outside {self.observation_space}")
            return torch.tensor([s])
        a = np.asarray(obs)
        if a.shape != self.observation_space.shape:
            raise ValueError(f"dqn: observation of shape {a.shape}, expected {self.observation_space.shape}")
        return torch.from_numpy(np.ascontiguousarray(a))[None]

    # ------------------------------------------------------------------ acting
    @property
    def epsilon(self) -> float:
        """CleanRL's ``linear_schedule`` at the current step (relative to the schedule's origin)."""
        c = self.cfg
        duration = c.exploration_fraction * c.total_steps
        if duration <= 0:
            return c.end_epsilon
        slope = (c.end_epsilon - c.start_epsilon) / duration
        return max(slope * (self.t - self.eps_origin) + c.start_epsilon, c.end_epsilon)

    def _q_values(self, obs: Any) -> np.ndarray:
        with _torch().inference_mode():
            return self.q(self._net_input(self._one(obs)))[0].to("cpu").numpy()

    def _probs(self, q: np.ndarray) -> np.ndarray:
        eps = self.epsilon
        greedy = q == q.max()
        return eps / self.n_actions + (1.0 - eps) * greedy / float(np.count_nonzero(greedy))

    def action_probs(self, obs: Any) -> np.ndarray:
        return self._probs(self._q_values(obs))

    def values(self, obs: Any) -> np.ndarray:
        return self._q_values(obs)

    def action_probs_and_values(self, obs: Any) -> tuple[np.ndarray, np.ndarray]:
        q = self._q_values(obs)
        return self._probs(q), q

    # ------------------------------------------------------------------ learning
    def observe(self, transition: Transition, *, intervention: bool = True) -> None:
        # A learner learns from its own transitions whoever chose them: ``intervention`` is ignored.
        tr = transition
        a = int(tr.action)
        if not 0 <= a < self.n_actions:
            raise ValueError(f"dqn: action {tr.action!r} is outside {self.action_space}")
        r = float(tr.reward)
        # The buffer keeps the raw reward (as the history does); clipping happens when sampled.
        self.replay.add(self._frame(tr.obs), a, r, self._frame(tr.next_obs), bool(tr.terminated), bool(tr.truncated))
        s = self.t
        self.t = s + 1
        self.episode_return += r
        self.episode_length += 1
        if tr.terminated or tr.truncated:
            if self.logger is not None:
                self.logger.episode(self.t, self.episode_return, self.episode_length, self.epsilon)
            self.episodes += 1
            self.episode_return, self.episode_length = 0.0, 0
        c = self.cfg
        if s - self.learn_origin > c.learning_starts:
            if s % c.train_every == 0:
                self._update()
                if self.logger is not None and self.n_updates % self.logger.every == 0:
                    self.logger.losses(self.t, self.last_td_loss, self.last_q, self.epsilon)
            if s % c.target_update_every == 0:
                self._sync_target()

    def _update(self) -> None:
        torch = _torch()
        c = self.cfg
        b = self.replay.sample(c.batch_size, self.replay_rng)
        frames = torch.from_numpy(b["frames"])
        if self.kind == "pixels":
            obs, nxt = frames[:, :-1], frames[:, 1:]
        else:
            obs, nxt = frames[:, 0], frames[:, 1]
        action = torch.from_numpy(b["action"]).to(self.device)
        r = np.sign(b["reward"]) if c.clip_rewards else b["reward"]
        reward = torch.from_numpy(r.astype(np.float32)).to(self.device)
        terminated = torch.from_numpy(b["terminated"]).to(self.device)
        with torch.no_grad():
            target_max = self.target(self._net_input(nxt)).max(dim=1).values
            # where(), not a (1 - done) product: a terminal step's successor frame is arbitrary.
            y = torch.where(terminated, reward, reward + c.gamma * target_max)
        q_sa = self.q(self._net_input(obs)).gather(1, action[:, None]).squeeze(1)
        if c.loss == "mse":
            loss = torch.nn.functional.mse_loss(q_sa, y)
        else:
            loss = torch.nn.functional.smooth_l1_loss(q_sa, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.n_updates += 1
        self.last_td_loss = float(loss.detach())
        self.last_q = float(q_sa.detach().mean())

    def _sync_target(self) -> None:
        with _torch().no_grad():
            for tp, p in zip(self.target.parameters(), self.q.parameters()):
                if self.cfg.tau == 1.0:
                    tp.copy_(p)
                else:
                    tp.copy_(self.cfg.tau * p + (1.0 - self.cfg.tau) * tp)

    def begin_segment(self, index: int) -> None:
        """Called by the recorder when segment ``index`` (a task) starts. From the second one on
        this is a transplant: the episode in progress was cut short, and the buffer, optimizer
        and epsilon schedule are kept or reset as configured (``on_switch_*``)."""
        if index == 0 or self.t == 0:
            return
        self.replay.cut()
        self.episode_return, self.episode_length = 0.0, 0
        c = self.cfg
        if c.on_switch_buffer == "clear":
            self.replay.clear()
            self.learn_origin = self.t
        if c.on_switch_optimizer == "reset":
            self.optimizer = self._new_optimizer()
        if c.on_switch_epsilon == "restart":
            self.eps_origin = self.t

    # ------------------------------------------------------------------ snapshots
    def weights(self) -> dict[str, np.ndarray]:
        """The online Q-network (``q.<param>``) and what epsilon depends on (``step``,
        ``epsilon_origin``): everything the policy at this moment depends on."""
        w = {f"q.{k}": v.detach().to("cpu").contiguous().numpy().copy() for k, v in self.q.state_dict().items()}
        w["step"] = np.array([self.t], np.int64)
        w["epsilon_origin"] = np.array([self.eps_origin], np.int64)
        return w

    def load_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Restore the online network (and the step, so epsilon matches); the target network is
        set to the restored online network unless ``target.<param>`` entries are given."""
        torch = _torch()
        sd = self.q.state_dict()
        new = {}
        for k, v in sd.items():
            key = f"q.{k}"
            if key not in weights:
                raise ValueError(f"dqn: weights lack {key!r}")
            a = np.asarray(weights[key])
            if tuple(a.shape) != tuple(v.shape):
                raise ValueError(f"dqn: weights {key!r} have shape {a.shape}, expected {tuple(v.shape)}")
            new[k] = torch.from_numpy(np.array(a, dtype=np.float32))
        self.q.load_state_dict(new)
        tgt = {k[len("target."):]: torch.from_numpy(np.array(v, dtype=np.float32)) for k, v in weights.items() if k.startswith("target.")}
        self.target.load_state_dict(tgt if tgt else self.q.state_dict())
        if "step" in weights:
            self.t = int(np.asarray(weights["step"]).reshape(-1)[0])
        if "epsilon_origin" in weights:
            self.eps_origin = int(np.asarray(weights["epsilon_origin"]).reshape(-1)[0])

    def get_state(self, *, history_backed: bool = False) -> dict[str, Any]:
        """Everything needed to resume bit-identically (tensors, arrays, JSON values). With
        ``history_backed`` the replay rows are left out: ``set_state`` then needs the history."""
        torch = _torch()
        opt_sd = self.optimizer.state_dict()
        return {
            "teacher": self.name,
            "counters": {"t": self.t, "eps_origin": self.eps_origin, "learn_origin": self.learn_origin,
                         "n_updates": self.n_updates, "episode_return": self.episode_return,
                         "episode_length": self.episode_length, "episodes": self.episodes,
                         "last_td_loss": self.last_td_loss, "last_q": self.last_q},
            "q": {k: v.detach().clone() for k, v in self.q.state_dict().items()},
            "target": {k: v.detach().clone() for k, v in self.target.state_dict().items()},
            "optimizer": {"state": {str(k): {n: (x.detach().clone() if torch.is_tensor(x) else x) for n, x in v.items()}
                                    for k, v in opt_sd["state"].items()},
                          "param_groups": [dict(g) for g in opt_sd["param_groups"]]},
            "rng": self.rng_state(),
            "replay_rng": self.replay_rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "replay": self.replay.state(history_backed=history_backed),
        }

    def set_state(self, state: dict[str, Any], *, history: Any = None) -> None:
        """Restore ``get_state()``; a history-backed state rebuilds the replay from ``history``
        (the recorded history, at least as long as the state's step count)."""
        torch = _torch()
        if state.get("teacher") != self.name:
            raise ValueError(f"{self.name}: state is for teacher {state.get('teacher')!r}")
        self.q.load_state_dict({k: torch.as_tensor(v) for k, v in state["q"].items()})
        self.target.load_state_dict({k: torch.as_tensor(v) for k, v in state["target"].items()})
        self.optimizer = self._new_optimizer()
        o = state["optimizer"]
        self.optimizer.load_state_dict({"state": {int(k): dict(v) for k, v in o["state"].items()},
                                        "param_groups": [dict(g) for g in o["param_groups"]]})
        # Moments come back in the default layout; give them their parameter's (channels_last)
        # strides: the fused Adam kernel walks param, grad and moments as one flat buffer.
        for p in self.q.parameters():
            st = self.optimizer.state.get(p, {})
            for k, v in st.items():
                if torch.is_tensor(v) and v.shape == p.shape and v.stride() != p.stride():
                    st[k] = torch.empty_like(p, dtype=v.dtype).copy_(v)
        c = state["counters"]
        self.t, self.eps_origin, self.learn_origin = int(c["t"]), int(c["eps_origin"]), int(c["learn_origin"])
        self.n_updates, self.episodes = int(c["n_updates"]), int(c["episodes"])
        self.episode_return, self.episode_length = float(c["episode_return"]), int(c["episode_length"])
        self.last_td_loss, self.last_q = float(c["last_td_loss"]), float(c["last_q"])
        self.set_rng_state(state["rng"])
        self.replay_rng.bit_generator.state = state["replay_rng"]
        torch.set_rng_state(torch.as_tensor(state["torch_rng"], dtype=torch.uint8))
        self.replay.load_state(state["replay"], history=history, frame_of=self._history_frames)
        if self.replay.t != self.t:
            raise ValueError(f"dqn: replay holds {self.replay.t} steps but the counters say {self.t}")


class DQNLog(MetricsLogger):
    """Training curves of a DQN teacher (``learners.logger``'s CSV, TensorBoard when installed)
    under CleanRL's metric names: ``charts/episodic_return`` (full game score),
    ``charts/episodic_length``, ``charts/epsilon``, ``charts/SPS``, ``losses/td_loss``,
    ``losses/q_values`` (mean Q of the batch).

    ``DQNLog(path, resume_step=t)`` continues a log after a resume, dropping rows past ``t``."""

    def __init__(self, csv_path: Any, *, every: int = 100, tensorboard_dir: Any = None, resume_step: int | None = None):
        super().__init__(csv_path, tensorboard_dir=tensorboard_dir, resume_step=resume_step)
        self.every = int(every)
        self._t0, self._s0 = time.time(), None

    def episode(self, step: int, ret: float, length: int, epsilon: float) -> None:
        self.scalar(step, "charts/episodic_return", ret)
        self.scalar(step, "charts/episodic_length", length)
        self.scalar(step, "charts/epsilon", epsilon)

    def losses(self, step: int, td_loss: float, q: float, epsilon: float) -> None:
        self.scalar(step, "losses/td_loss", td_loss)
        self.scalar(step, "losses/q_values", q)
        now = time.time()
        if self._s0 is not None and now > self._t0:
            self.scalar(step, "charts/SPS", (step - self._s0) / (now - self._t0))
        self._t0, self._s0 = now, step


__all__ = ["DQN", "DQNConfig", "DQNLog", "PRESETS"]
