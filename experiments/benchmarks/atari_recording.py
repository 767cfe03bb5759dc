"""DQN on Atari: raw ALE steps/s, the DQN teacher without and with recording, and a CleanRL-dqn_atari-structured loop, in one run.

Every loop runs the same ``--steps`` agent steps of ``ALE/<Game>-v5`` under the project's
protocol (``envs.atari``: sticky actions, full 18 actions, 84x84 gray, 4-frame stack) with
CleanRL's Atari settings (buffer 10^6, batch 32, train every 4, target copy every 1000, Adam
1e-4, epsilon 1 -> 0.01 over the first 10% of the run) except a warm-up of
``--learning-starts`` steps so that most measured steps train, on ``--threads`` torch threads:

* ``ale_steps_per_s``: the bare ``ALE/<Game>-v5`` env (its own frame skip 4, no preprocessing)
  and ``env_steps_per_s``: the protocol env (gymnasium's AtariPreprocessing + FrameStack),
  random actions;
* ``dqn_unrecorded_steps_per_s``: ``teacher.act`` / ``env.step`` / ``teacher.observe``;
* ``dqn_recorded_steps_per_s``: ``learners.recorder`` streaming the history to disk (one frame
  per step, teacher_probs, teacher_values) with weight snapshots (safetensors) at step 0, every
  ``--snapshot-every`` steps and at the end; ``checkpoint_seconds`` / ``snapshot_seconds``: the
  wall time of one resumable checkpoint (history-backed: networks, Adam, RNGs, no replay rows)
  and of one snapshot of the trained teacher, measured right after; and
  ``recorded_with_checkpoints_over_unrecorded``: the recorded rate with both amortised at one
  per ``--checkpoint-every`` / ``--snapshot-every`` steps (train_dqn's defaults: 10^4);
* ``cleanrl_structured_steps_per_s``: a loop written here from the published description of
  CleanRL's ``dqn_atari.py`` (not copied): a one-env ``SyncVectorEnv``; ``random() < epsilon``
  for a random action, else ``argmax`` of the Q-network on ``torch.Tensor(obs)``; an SB3-style
  replay storing whole stacked observations (``optimize_memory_usage``: next obs = next slot),
  sampled with numpy's global RNG and copied to tensors; Nature CNN ``forward(x / 255)`` in the
  default memory layout; MSE TD loss; ``copy_`` target update every 1000 steps. (Its stacked
  buffer is sized to the steps it fills: 10^6 stacked observations would need ~26 GiB, which
  this machine refuses to allocate.)

With ``--memory``: a 10^6-transition replay filled through ``add`` and the process's resident
memory (the issue's budget: < 10 GB for a 10^6-step run with a 10^6 buffer).

Ratios: ``recorded_over_unrecorded`` and ``recorded_with_checkpoints_over_unrecorded`` (target
>= 0.90) and ``ours_over_cleanrl`` (unrecorded teacher / CleanRL-structured, target >= 1.0). Loops are interleaved over ``--rounds`` rounds; the
figures are medians over rounds and the ratios medians of the per-round ratios (the machine is
shared: load averages are printed too). Differences of ours that matter for speed: channels_last
convolutions, torch's fused Adam kernel, and a replay that gathers 5 frames per sample instead
of two 4-frame stacks.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import time
from typing import Any

import gymnasium as gym
import numpy as np
from safetensors.numpy import save_file
from tqdm import tqdm

import envs
from envs.atari import PROTOCOL, make_atari
from experiments.cli import UsageError
from learners.checkpoint import save_state
from learners.files import sha256_file
from learners.protocols import Transition
from learners.recorder import Recorder, Segment
from learners.teachers import make_teacher
from learners.teachers.replay import FrameReplay


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--game", default="Breakout", help="Atari game (default: Breakout)")
    p.add_argument("--steps", type=int, default=1500, help="agent steps per loop (default: 1500)")
    p.add_argument("--learning-starts", type=int, default=150, help="warm-up steps before training (default: 150)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default: 1; 2 collapses when the machine is shared)")
    p.add_argument("--rounds", type=int, default=2, help="interleaved repetitions of every loop (default: 2)")
    p.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    p.add_argument("--snapshot-every", type=int, default=10_000,
                   help="weight snapshots of the recorded loop (default: 10000, train_dqn's default)")
    p.add_argument("--checkpoint-every", type=int, default=10_000,
                   help="checkpoint cadence the amortised ratio assumes (default: 10000, train_dqn's default)")
    p.add_argument("--memory", action="store_true",
                   help="also fill a 10^6-transition replay (frames once) and report the process's resident memory (~7 GB for ~30 s)")


SETTINGS = dict(buffer_size=1_000_000, batch_size=32, train_every=4, target_update_every=1_000, lr=1e-4,
                gamma=0.99, start_epsilon=1.0, end_epsilon=0.01, exploration_fraction=0.1)


def _env_speed(env_id: str, steps: int, seed: int, protocol: bool) -> float:
    env = envs.make(env_id) if protocol else gym.make(env_id, full_action_space=True)
    rng = np.random.default_rng(seed)
    acts = rng.integers(env.action_space.n, size=steps)
    env.reset(seed=seed)
    t0 = time.perf_counter()
    for a in acts:
        _, _, term, trunc, _ = env.step(int(a))
        if term or trunc:
            env.reset()
    dt = time.perf_counter() - t0
    env.close()
    return steps / dt


def _teacher(env_id: str, args: argparse.Namespace) -> Any:
    env = envs.make(env_id)
    t = make_teacher("dqn", env.observation_space, env.action_space, seed=args.seed, preset="paper",
                     total_steps=args.steps, learning_starts=args.learning_starts, threads=args.threads, **SETTINGS)
    env.close()
    return t


def _unrecorded(env_id: str, args: argparse.Namespace) -> float:
    teacher = _teacher(env_id, args)
    env = envs.make(env_id)
    obs, _ = env.reset(seed=args.seed)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        a = teacher.act(obs)
        nxt, r, term, trunc, _ = env.step(a)
        teacher.observe(Transition(obs, a, float(r), nxt, bool(term), bool(trunc)))
        obs = env.reset()[0] if term or trunc else nxt
    dt = time.perf_counter() - t0
    env.close()
    return args.steps / dt


def _recorded(env_id: str, args: argparse.Namespace, root: str) -> tuple[float, float, float]:
    """Steps/s of a recording run (history streamed to disk, snapshots at --snapshot-every and at
    the end), then the wall time of one resumable checkpoint and of one weight snapshot of the
    trained teacher (events a real run has once per 10^4 steps)."""
    teacher = _teacher(env_id, args)
    env = envs.make(env_id)  # made before the clock starts, as in the unrecorded loop
    out = os.path.join(root, f"rec-{time.time_ns()}")
    rec = Recorder(teacher, [Segment(env_id, {}, steps=args.steps)], seed=args.seed, out=out,
                   snapshot_every=args.snapshot_every, obs_transform=lambda o: np.asarray(o)[-1],
                   env_factory=lambda *a, **k: env)
    t0 = time.perf_counter()
    h = rec.run()
    dt = time.perf_counter() - t0
    assert h is not None and len(h) == args.steps
    t1 = time.perf_counter()
    save_state(os.path.join(root, "checkpoint"), {"teacher": teacher.get_state(history_backed=True)})
    ck = time.perf_counter() - t1
    t1 = time.perf_counter()
    snap = os.path.join(root, "snapshot.safetensors")
    save_file(teacher.weights(), snap)
    sha256_file(snap)
    sn = time.perf_counter() - t1
    shutil.rmtree(out, ignore_errors=True)
    return args.steps / dt, ck, sn


class _SB3StyleReplay:
    """Stores whole observations; next obs of slot i is slot i+1 (SB3's optimize_memory_usage)."""

    def __init__(self, size: int, obs_shape: tuple[int, ...]):
        self.size = size
        self.obs = np.zeros((size, 1, *obs_shape), np.uint8)  # lazily paged, as SB3's np.zeros
        self.actions = np.zeros((size, 1, 1), np.int64)
        self.rewards = np.zeros((size, 1), np.float32)
        self.dones = np.zeros((size, 1), np.float32)
        self.pos, self.full = 0, False

    def add(self, obs, next_obs, action, reward, done) -> None:
        self.obs[self.pos] = np.array(obs)
        self.obs[(self.pos + 1) % self.size] = np.array(next_obs)
        self.actions[self.pos] = np.array(action).reshape(1, 1)
        self.rewards[self.pos] = np.array(reward)
        self.dones[self.pos] = np.array(done)
        self.pos = (self.pos + 1) % self.size
        self.full = self.full or self.pos == 0

    def sample(self, batch: int, torch: Any) -> tuple[Any, ...]:
        if self.full:
            idx = (np.random.randint(1, self.size, size=batch) + self.pos) % self.size
        else:
            idx = np.random.randint(0, self.pos, size=batch)
        env_idx = np.zeros(batch, np.int64)
        nxt = self.obs[(idx + 1) % self.size, env_idx]
        data = (self.obs[idx, env_idx], self.actions[idx, env_idx], nxt, self.dones[idx], self.rewards[idx])
        return tuple(torch.tensor(d) for d in data)


def _cleanrl_structured(env_id: str, args: argparse.Namespace) -> float:
    # torch on use (here and in run): its import takes 2.3 s here, 3x all the rest of --help.
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    vec = gym.vector.SyncVectorEnv([lambda: envs.make(env_id)], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    n_actions = int(vec.single_action_space.n)

    class QNetwork(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.network = nn.Sequential(
                nn.Conv2d(4, 32, 8, stride=4), nn.ReLU(), nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
                nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(), nn.Flatten(), nn.Linear(3136, 512), nn.ReLU(),
                nn.Linear(512, n_actions))

        def forward(self, x):
            return self.network(x / 255.0)

    s = SETTINGS
    q_network = QNetwork()
    optimizer = torch.optim.Adam(q_network.parameters(), lr=s["lr"])
    target_network = QNetwork()
    target_network.load_state_dict(q_network.state_dict())
    # Stacked storage for 10^6 steps is ~26 GiB, more than this machine will allocate (the
    # trap our frame-once replay avoids); the loop only ever fills --steps slots, so it gets
    # that many (sampling is uniform over the filled slots either way).
    rb = _SB3StyleReplay(min(s["buffer_size"], args.steps + 1), vec.single_observation_space.shape)

    def linear_schedule(start_e: float, end_e: float, duration: float, t: int) -> float:
        slope = (end_e - start_e) / duration
        return max(slope * t + start_e, end_e)

    obs, _ = vec.reset(seed=args.seed)
    t0 = time.perf_counter()
    for global_step in range(args.steps):
        epsilon = linear_schedule(s["start_epsilon"], s["end_epsilon"], s["exploration_fraction"] * args.steps, global_step)
        if random.random() < epsilon:
            actions = np.array([vec.single_action_space.sample()])
        else:
            q_values = q_network(torch.Tensor(obs))
            actions = torch.argmax(q_values, dim=1).cpu().numpy()
        next_obs, rewards, terminations, truncations, infos = vec.step(actions)
        real_next_obs = next_obs.copy()
        for i, trunc in enumerate(truncations):
            if trunc:
                real_next_obs[i] = infos["final_obs"][i]
        rb.add(obs, real_next_obs, actions, rewards, terminations)
        obs = next_obs
        if global_step > args.learning_starts:
            if global_step % s["train_every"] == 0:
                b_obs, b_act, b_next, b_done, b_rew = rb.sample(s["batch_size"], torch)
                with torch.no_grad():
                    target_max, _ = target_network(b_next).max(dim=1)
                    td_target = b_rew.flatten() + s["gamma"] * target_max * (1 - b_done.flatten())
                old_val = q_network(b_obs).gather(1, b_act).squeeze()
                loss = F.mse_loss(td_target, old_val)
                if global_step % 100 == 0:
                    _ = (loss.item(), old_val.mean().item())  # what CleanRL logs
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            if global_step % s["target_update_every"] == 0:
                for tp, qp in zip(target_network.parameters(), q_network.parameters()):
                    tp.data.copy_(1.0 * qp.data + (1.0 - 1.0) * tp.data)
    dt = time.perf_counter() - t0
    vec.close()
    return args.steps / dt


def _rss_gb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 2**20
    return float("nan")


def _replay_memory(capacity: int = 1_000_000) -> dict[str, float]:
    """Fill the DQN replay to 10^6 transitions through its ordinary ``add`` (truncating an
    episode every 1000 steps) and read the process's resident memory; time a batch sample."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (64, 84, 84), dtype=np.uint8)
    rss0 = _rss_gb()
    rb = FrameReplay(capacity, (84, 84), np.uint8, 4)
    t0 = time.perf_counter()
    for t in range(capacity):
        rb.add(frames[t % 64], t % 18, 1.0, frames[(t + 1) % 64], False, t % 1000 == 999)
    fill = time.perf_counter() - t0
    rss1 = _rss_gb()
    g = np.random.default_rng(1)
    t0 = time.perf_counter()
    for _ in range(200):
        rb.sample(32, g)
    sample_ms = (time.perf_counter() - t0) / 200 * 1e3
    out = {"replay_transitions": rb.size, "rss_gb_before": round(rss0, 2), "rss_gb_full_buffer": round(rss1, 2),
           "replay_gb": round(rb.frames.nbytes / 2**30, 2), "fill_s": round(fill, 1), "sample_batch32_ms": round(sample_ms, 3)}
    del rb
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.steps <= args.learning_starts or args.learning_starts < 0:
        raise UsageError("--steps must exceed --learning-starts >= 0")
    if args.rounds < 1 or args.threads < 1:
        raise UsageError("--rounds and --threads must be >= 1")
    import torch  # on use: see _cleanrl_structured

    env_id = f"ALE/{args.game}-v5"
    make_atari(env_id).close()  # a clear error for an unknown game or a missing ROM, before timing
    torch.set_num_threads(args.threads)
    load0 = os.getloadavg()
    root = tempfile.mkdtemp(prefix="atari_recording-")
    res: dict[str, list[float]] = {k: [] for k in ("ale", "env", "unrec", "rec", "cleanrl", "checkpoint_s", "snapshot_s")}
    ratios_rec, ratios_ours, ratios_amortised = [], [], []
    try:
        for r in tqdm(range(args.rounds), desc="rounds", leave=False):
            res["ale"].append(_env_speed(env_id, 3000, args.seed + r, protocol=False))
            res["env"].append(_env_speed(env_id, 3000, args.seed + r, protocol=True))
            res["unrec"].append(_unrecorded(env_id, args))
            sps, ck, sn = _recorded(env_id, args, root)
            res["rec"].append(sps)
            res["checkpoint_s"].append(ck)
            res["snapshot_s"].append(sn)
            res["cleanrl"].append(_cleanrl_structured(env_id, args))
            ratios_rec.append(res["rec"][-1] / res["unrec"][-1])
            # A real run also checkpoints and snapshots once per 10^4 steps: amortise their cost.
            per_step = ck / args.checkpoint_every + sn / args.snapshot_every
            ratios_amortised.append(1.0 / (1.0 / sps + per_step) / res["unrec"][-1])
            ratios_ours.append(res["unrec"][-1] / res["cleanrl"][-1])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    med = {k: float(np.median(v)) for k, v in res.items()}
    memory = _replay_memory() if args.memory else None
    return {
        "game": env_id,
        "protocol": PROTOCOL["name"],
        "steps_per_loop": args.steps,
        "learning_starts": args.learning_starts,
        "threads": args.threads,
        "ale_steps_per_s": round(med["ale"], 1),
        "env_steps_per_s": round(med["env"], 1),
        "dqn_unrecorded_steps_per_s": round(med["unrec"], 2),
        "dqn_recorded_steps_per_s": round(med["rec"], 2),
        "cleanrl_structured_steps_per_s": round(med["cleanrl"], 2),
        "recorded_over_unrecorded": round(float(np.median(ratios_rec)), 3),
        "checkpoint_seconds": round(med["checkpoint_s"], 3),
        "snapshot_seconds": round(med["snapshot_s"], 3),
        "recorded_with_checkpoints_over_unrecorded": round(float(np.median(ratios_amortised)), 3),
        "ours_over_cleanrl": round(float(np.median(ratios_ours)), 3),
        "per_round": {k: [round(x, 2) for x in v] for k, v in res.items()},
        "target_recorded_over_unrecorded": 0.90,
        "target_ours_over_cleanrl": 1.0,
        "memory_1e6_buffer": memory,
        "loadavg_before": [round(x, 2) for x in load0],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
