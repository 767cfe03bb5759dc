"""The recorder: runs a teacher on an env (or a sequence of tasks) and writes its LearningHistory.

    from learners.recorder import record, Segment
    h = record(teacher, "hypospace/DarkRoom-v0", env_kwargs={"goal": [2, 7]}, episodes=1000, seed=0)
    h = record(teacher, [Segment("hypospace/DarkRoom-v0", {"goal": [2, 7]}, episodes=200),
                         Segment("hypospace/DarkRoom-v0", {"goal": [6, 1]}, episodes=200)], seed=0)

At every step it records ``teacher_probs = teacher.action_probs(obs)`` and, when the teacher has
them, ``teacher_values = teacher.values(obs)``; the action is drawn from exactly those
probabilities with the teacher's own generator (what ``teacher.act`` does), then the teacher
observes the transition. Weight snapshots are taken every ``snapshot_every`` steps (before
acting) and at the end. A teacher may switch task mid-run: each ``Segment`` is marked in the
``segment`` column and described in ``metadata["segments"]``.

With ``out`` the history streams to disk (``HistoryWriter``); with ``checkpoint_every`` the run
also checkpoints (teacher state, env state, recorder position) inside ``<out>.partial/`` so that
``record(..., out=DIR, resume=True)`` continues a killed run and produces a history identical
to one that was never killed.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import gymnasium as gym
import numpy as np
from tqdm import tqdm

import envs

from learners.checkpoint import load_state, save_state
from learners.history import LearningHistory
from learners.history_store import HistoryWriter, open_partial
from learners.protocols import Transition, sample_action
from learners.provenance import git_commit, package_versions

CHECKPOINT = "checkpoint"


@dataclass
class Segment:
    """A stretch of a run on one task: an env id, its kwargs (the task), and its length."""

    env_id: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    episodes: int | None = None
    steps: int | None = None

    def __post_init__(self) -> None:
        if (self.episodes is None) == (self.steps is None):
            raise ValueError(f"segment {self.env_id}: give exactly one of episodes / steps")
        n = self.episodes if self.episodes is not None else self.steps
        if int(n) <= 0:
            raise ValueError(f"segment {self.env_id}: length must be positive, got {n}")


def env_seed(seed: int, segment: int) -> int:
    """The env seed of a segment (independent streams for each segment of a run)."""
    return int(np.random.SeedSequence([int(seed), int(segment)]).generate_state(1)[0])


def get_env_state(env: gym.Env) -> Any:
    return env.get_wrapper_attr("get_state")()


def set_env_state(env: gym.Env, state: Any) -> None:
    env.get_wrapper_attr("set_state")(state)


class _Sink:
    """Collects rows in chunks; streams them to a HistoryWriter or keeps them in memory."""

    CHUNK = 4096

    def __init__(self, writer: HistoryWriter | None):
        self.writer = writer
        self.rows: dict[str, list[Any]] = {k: [] for k in ("obs", "action", "reward", "terminated", "truncated", "episode", "teacher_probs", "segment", "teacher_values")}
        self.mem: dict[str, list[np.ndarray]] = {k: [] for k in self.rows}
        self.final_steps: list[int] = []
        self.final_obs: list[Any] = []
        self.snapshots: dict[int, dict[str, np.ndarray]] = {}

    def add(self, obs, action, reward, terminated, truncated, episode, probs, segment, values) -> None:
        r = self.rows
        r["obs"].append(obs)
        r["action"].append(action)
        r["reward"].append(reward)
        r["terminated"].append(terminated)
        r["truncated"].append(truncated)
        r["episode"].append(episode)
        r["teacher_probs"].append(probs)
        r["segment"].append(segment)
        r["teacher_values"].append(values)
        if len(r["action"]) >= self.CHUNK:
            self.flush_rows()

    def add_final(self, step: int, obs: Any) -> None:
        if self.writer is not None:
            self.writer.append_final_obs(step, obs)
        else:
            self.final_steps.append(step)
            self.final_obs.append(obs)

    def add_snapshot(self, step: int, weights: dict[str, np.ndarray]) -> None:
        if self.writer is not None:
            self.writer.add_snapshot(step, weights)
        else:
            self.snapshots[step] = {k: np.array(v, copy=True) for k, v in weights.items()}

    def flush_rows(self) -> None:
        r = self.rows
        if not r["action"]:
            return
        chunk = {k: np.asarray(v) for k, v in r.items() if k != "teacher_values"}
        vals = None if r["teacher_values"][0] is None else np.asarray(r["teacher_values"])
        if self.writer is not None:
            self.writer.append_rows(teacher_values=vals, **chunk)
        else:
            for k, v in chunk.items():
                self.mem[k].append(v)
            if vals is not None:
                self.mem["teacher_values"].append(vals)
        for v in r.values():
            v.clear()


class Recorder:
    """One recording run (see module docstring). Use ``record()`` unless you need the object."""

    def __init__(
        self,
        teacher: Any,
        segments: Sequence[Segment],
        *,
        seed: int = 0,
        snapshot_every: int | None = None,
        out: str | Path | None = None,
        checkpoint_every: int | None = None,
        obs_transform: Callable[[Any], Any] | None = None,
        metadata: dict[str, Any] | None = None,
        overwrite: bool = False,
        env_factory: Callable[..., gym.Env] | None = None,
    ):
        if not segments:
            raise ValueError("nothing to record: no segments")
        if checkpoint_every and out is None:
            raise ValueError("checkpoint_every needs an output directory (out=...)")
        if snapshot_every is not None and snapshot_every <= 0:
            raise ValueError(f"snapshot_every must be positive, got {snapshot_every}")
        self.teacher = teacher
        self.segments = list(segments)
        self.seed = int(seed)
        self.snapshot_every = snapshot_every
        self.out = None if out is None else Path(out)
        self.checkpoint_every = checkpoint_every
        self.obs_transform = obs_transform or (lambda o: o)
        self.user_metadata = dict(metadata or {})
        self.overwrite = overwrite
        if env_factory is None:
            env_factory = envs.make
        self.env_factory = env_factory

    # -- metadata --------------------------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        first = self.segments[0]
        return {
            "env_id": first.env_id,
            "env_kwargs": first.env_kwargs,
            "segments": [dataclasses.asdict(s) for s in self.segments],
            "teacher": self.teacher.config() if hasattr(self.teacher, "config") else {"teacher": type(self.teacher).__name__},
            "seed": self.seed,
            "snapshot_every": self.snapshot_every,
            "n_actions": int(self.teacher.n_actions),
            "commit": git_commit(),
            "versions": package_versions(),
            **self.user_metadata,
        }

    # -- the run ---------------------------------------------------------------------------------
    def run(self, *, progress: bool = False, resume: bool = False, stop_after: int | None = None) -> LearningHistory | None:
        """Record every segment. ``stop_after`` (tests) stops abruptly after that many steps in
        this call, as a kill would, leaving the partial run and its last checkpoint on disk."""
        teacher = self.teacher
        total_steps = self._total_steps()
        state = None
        writer = None
        if resume:
            if self.out is None:
                raise ValueError("resume needs out=DIR")
            ck = self.out.with_name(self.out.name + ".partial") / CHECKPOINT
            state = load_state(ck)
            if state["recorder"].get("teacher_history_backed"):
                # The teacher's checkpoint left out what the history already holds (a replay
                # buffer of the recorded steps): rebuild it from the partial history's rows.
                rs = state["recorder"]
                teacher.set_state(state["teacher"], history=open_partial(ck.parent, rs["rows"], rs["final_obs_rows"]))
            else:
                teacher.set_state(state["teacher"])
        sink_writer_kwargs = None
        env = None
        try:
            # Position in the run.
            t, episode, seg_i, seg_t, seg_ep = 0, 0, 0, 0, 0
            if state is not None:
                rs = state["recorder"]
                t, episode, seg_i, seg_t, seg_ep = rs["t"], rs["episode"], rs["segment"], rs["segment_t"], rs["segment_episode"]
            obs = None
            pbar = None
            if progress:
                pbar = tqdm(total=total_steps, initial=t, unit="step", desc="record", dynamic_ncols=True,
                            unit_scale=True, mininterval=0.5) if total_steps else \
                    tqdm(total=self._total_episodes(), initial=episode, unit="ep", desc="record", dynamic_ncols=True)
            sink = None
            last_ck = t
            stopped = 0
            last_done = True
            while seg_i < len(self.segments):
                seg = self.segments[seg_i]
                env = self.env_factory(seg.env_id, **seg.env_kwargs)
                if not isinstance(env.action_space, gym.spaces.Discrete) or env.action_space.n != teacher.n_actions:
                    raise ValueError(f"segment {seg_i} ({seg.env_id}): action space {env.action_space} does not match the teacher's {teacher.n_actions} actions")
                if state is not None and seg_i == state["recorder"]["segment"]:
                    env.reset(seed=env_seed(self.seed, seg_i))
                    set_env_state(env, state["env"])
                    obs = state["recorder"]["obs"]
                    obs = np.asarray(obs) if isinstance(obs, np.ndarray) else obs
                else:
                    obs, _ = env.reset(seed=env_seed(self.seed, seg_i))
                    seg_t, seg_ep = 0, 0
                    if hasattr(teacher, "begin_segment"):
                        # A teacher may react to a task switch (e.g. DQN's transplant policy).
                        teacher.begin_segment(seg_i)
                if sink is None:
                    sink = _Sink(None)
                    if self.out is not None:
                        stored = np.asarray(self.obs_transform(obs))
                        probs0 = np.asarray(teacher.action_probs(obs))
                        vals0 = teacher.values(obs)
                        sink_writer_kwargs = dict(
                            obs_shape=stored.shape, obs_dtype=stored.dtype, n_actions=teacher.n_actions,
                            probs_dtype=probs0.dtype if probs0.dtype.kind == "f" else np.float64,
                            values_dtype=None if vals0 is None else np.asarray(vals0).dtype,
                            metadata=self.metadata(),
                        )
                        if state is not None:
                            rs = state["recorder"]
                            writer = HistoryWriter.resume(self.out, rows=rs["rows"], final_obs_rows=rs["final_obs_rows"], **sink_writer_kwargs)
                        else:
                            writer = HistoryWriter(self.out, overwrite=self.overwrite, **sink_writer_kwargs)
                        sink.writer = writer
                while (seg.steps is not None and seg_t < seg.steps) or (seg.episodes is not None and seg_ep < seg.episodes):
                    if self.snapshot_every and t % self.snapshot_every == 0:
                        sink.add_snapshot(t, teacher.weights())
                    if hasattr(teacher, "action_probs_and_values"):
                        probs, values = teacher.action_probs_and_values(obs)
                    else:
                        probs, values = teacher.action_probs(obs), teacher.values(obs)
                    action = sample_action(probs, teacher.rng)
                    next_obs, reward, terminated, truncated, _ = env.step(action)
                    if (not (terminated or truncated) and seg.steps is not None and seg_t + 1 >= seg.steps
                            and seg_i + 1 < len(self.segments)):
                        # The run moves to the next task mid-episode: the cut is a time limit, so
                        # the step is marked truncated (learners bootstrap from its final obs and
                        # nothing pending leaks into the next task).
                        truncated = True
                    sink.add(self.obs_transform(obs), action, float(reward), bool(terminated), bool(truncated),
                             episode, probs, seg_i, values)
                    teacher.observe(Transition(obs, action, float(reward), next_obs, bool(terminated), bool(truncated)), intervention=True)
                    t += 1
                    seg_t += 1
                    last_done = bool(terminated or truncated)
                    if terminated or truncated:
                        sink.add_final(t - 1, self.obs_transform(next_obs))
                        episode += 1
                        seg_ep += 1
                        if pbar is not None and not total_steps:
                            pbar.update(1)
                        obs, _ = env.reset()
                    else:
                        obs = next_obs
                    if pbar is not None and total_steps:
                        pbar.update(1)
                    stopped += 1
                    if self.checkpoint_every and t - last_ck >= self.checkpoint_every:
                        self._checkpoint(sink, writer, env, obs, t, episode, seg_i, seg_t, seg_ep)
                        last_ck = t
                    if stop_after is not None and stopped >= stop_after:
                        # Simulated kill: leave files as they are (no close, no cleanup).
                        env.close()
                        return None
                env.close()
                env = None
                seg_i += 1
                state = None
            if pbar is not None:
                pbar.close()
            if t > 0 and not last_done:
                sink.add_final(t - 1, self.obs_transform(obs))  # successor of the last step
            sink.add_snapshot(t, teacher.weights())
            sink.flush_rows()
            if writer is not None:
                return writer.close()
            m = sink.mem
            return LearningHistory.from_arrays(
                obs=np.concatenate(m["obs"]), action=np.concatenate(m["action"]), reward=np.concatenate(m["reward"]),
                terminated=np.concatenate(m["terminated"]), truncated=np.concatenate(m["truncated"]),
                episode=np.concatenate(m["episode"]), teacher_probs=np.concatenate(m["teacher_probs"]),
                segment=np.concatenate(m["segment"]),
                teacher_values=np.concatenate(m["teacher_values"]) if m["teacher_values"] else None,
                final_obs=(np.asarray(sink.final_steps, np.int64), np.asarray(sink.final_obs)),
                snapshots=sink.snapshots, metadata=self.metadata(),
            )
        except BaseException:
            if env is not None:
                env.close()
            # Without checkpoints a failed run leaves nothing behind; with them the partial
            # run is what --resume continues, so it stays.
            if writer is not None:
                if self.checkpoint_every:
                    writer.release()
                else:
                    writer.abort()
            raise

    def _checkpoint(self, sink: _Sink, writer: HistoryWriter | None, env: gym.Env, obs: Any,
                    t: int, episode: int, seg_i: int, seg_t: int, seg_ep: int) -> None:
        sink.flush_rows()
        assert writer is not None
        rows = writer.flush()
        state = {
            "recorder": {"t": t, "episode": episode, "segment": seg_i, "segment_t": seg_t, "segment_episode": seg_ep,
                         "obs": obs if not isinstance(obs, np.integer) else int(obs),
                         "rows": rows, "final_obs_rows": writer.final_obs_rows, "time": time.time(),
                         "teacher_history_backed": self._history_backed()},
            "teacher": self._teacher_state(),
            "env": get_env_state(env),
            "metadata": self.metadata(),
        }
        save_state(writer.partial / CHECKPOINT, state)

    def _history_backed(self) -> bool:
        """Teachers with ``state_from_history`` checkpoint without the rows the history holds
        (a 10^6-frame replay buffer would be ~7 GB per checkpoint) and rebuild them on resume
        from the partial history's memory maps (``set_state(state, history=...)``)."""
        return bool(getattr(self.teacher, "state_from_history", False))

    def _teacher_state(self) -> Any:
        if self._history_backed():
            return self.teacher.get_state(history_backed=True)
        return self.teacher.get_state()

    def _total_steps(self) -> int | None:
        if all(s.steps is not None for s in self.segments):
            return int(sum(s.steps for s in self.segments))
        return None

    def _total_episodes(self) -> int | None:
        if all(s.episodes is not None for s in self.segments):
            return int(sum(s.episodes for s in self.segments))
        return None


def record(
    teacher: Any,
    env: str | Sequence[Segment],
    *,
    episodes: int | None = None,
    steps: int | None = None,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    snapshot_every: int | None = None,
    out: str | Path | None = None,
    progress: bool = False,
    checkpoint_every: int | None = None,
    resume: bool = False,
    obs_transform: Callable[[Any], Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> LearningHistory:
    """Run ``teacher`` and return its LearningHistory (streamed to ``out`` when given).

    ``env`` is an env id (with ``env_kwargs`` and ``episodes`` or ``steps``) or a list of
    ``Segment``s. ``seed`` seeds the environment; the teacher carries its own seed."""
    if isinstance(env, str):
        segments = [Segment(env, dict(env_kwargs or {}), episodes=episodes, steps=steps)]
    else:
        if episodes is not None or steps is not None or env_kwargs:
            raise ValueError("with segments, give lengths and kwargs per Segment")
        segments = list(env)
    rec = Recorder(teacher, segments, seed=seed, snapshot_every=snapshot_every, out=out,
                   checkpoint_every=checkpoint_every, obs_transform=obs_transform, metadata=metadata)
    h = rec.run(progress=progress, resume=resume)
    assert h is not None
    return h
