"""A rung's data: its tasks, its random streams, and its teacher histories, recorded once.

Every history is recorded by the project's recorder and cached under ``$HYPOSPACE_CACHE``
(``learners.cache``) by a hash of everything that determines it, so every imitator and every
control of every cell reads the very same held-out histories, and a second study (or a resumed
one) records nothing again.

Random streams. Each (rung, purpose, task, seed) draws its own stream: a ``SeedSequence`` whose
entropy is a hash of the rung's name and whose spawn key is (purpose, task set, task index,
seed). Imitators and controls evaluated on the same (rung, question, task, seed) share the env
stream on purpose (common random numbers make their comparison paired); no two tasks and no
two seeds share one (``tests/test_study.py`` checks it).
"""
from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from envs.tasks import TaskSplit, optimal_return, task_split
from experiments.study.rungs import Rung
from learners.cache import cache_dir
from learners.history import LearningHistory
from learners.solomonoff import parse_program
from learners.solomonoff.draw import teacher_for
from learners.corpus import HistoryJob, ensure_histories


def _word(x: Any) -> int:
    return zlib.crc32(str(x).encode()) if isinstance(x, str) else int(x)


def stream(rung: str, *key: Any) -> np.random.SeedSequence:
    """The random stream of ``key`` (strings and integers) on rung ``rung``."""
    entropy = int.from_bytes(hashlib.sha256(rung.encode()).digest()[:8], "little")
    return np.random.SeedSequence(entropy, spawn_key=tuple(_word(k) for k in key))


def seed_of(rung: str, *key: Any) -> int:
    """A 31-bit integer seed drawn from ``stream(rung, *key)`` (for APIs that take an int)."""
    return int(stream(rung, *key).generate_state(1)[0] & 0x7FFFFFFF)


def tasks_of(rung: Rung) -> TaskSplit:
    """The rung's train / validation / test tasks (validation carved from the training side)."""
    s = task_split(rung.env_id, seed=0, **rung.split).with_validation(rung.n_val)
    train = s.train[: rung.n_train] if rung.n_train else s.train
    if len(s.test) < rung.n_test:
        raise ValueError(f"rung {rung.name}: the split has {len(s.test)} test tasks, the rung asks for {rung.n_test}")
    return TaskSplit(train=train, val=s.val, test=s.test[: rung.n_test], env_id=s.env_id, params=s.params)


def teacher_options(rung: Rung) -> dict[str, Any]:
    """The registered teacher (``{"name": ..., **options}``) that runs the rung's teacher program."""
    bandit = rung.env_id == "hypospace/Bandit-v0"
    name, opts = teacher_for(parse_program(rung.teacher), bandit=bandit)
    return {"name": name, **opts}


def episode_values(rung: Rung, task: dict[str, Any], history: LearningHistory) -> np.ndarray:
    """The return of every episode as a fraction of the task's optimal return.

    Bandits use the *expected* reward of the arm pulled (``means[a] / max(means)``) instead of
    the sampled 0/1 reward: the same expectation with far less noise."""
    if rung.env_id == "hypospace/Bandit-v0":
        means = np.asarray(task["means"], float)
        return means[np.asarray(history.action)] / means.max()
    return history.episode_returns() / optimal_return(rung.env_id, **task)


@dataclass
class RungData:
    """The tasks and the cached teacher histories of one rung under one preset's seeds."""

    rung: Rung
    teacher_seeds: int
    #: the tasks the questions score: "test" (held out, scored once) or "val" (for choices)
    scored: str = "test"

    def __post_init__(self) -> None:
        if self.scored not in ("test", "val"):
            raise ValueError(f"scored must be 'test' or 'val', got {self.scored!r}")

    @cached_property
    def split(self) -> TaskSplit:
        return tasks_of(self.rung)

    @property
    def tasks(self) -> list[dict[str, Any]]:
        """The scored tasks (test or validation), each with its held-out teacher histories."""
        return self.split.test if self.scored == "test" else self.split.val

    def seed(self, *key: Any) -> int:
        """A stream seed of the scored tasks: validation cells never share a stream with test cells."""
        return seed_of(self.rung.name, *key) if self.scored == "test" else seed_of(self.rung.name, "val", *key)

    @cached_property
    def teacher(self) -> dict[str, Any]:
        return teacher_options(self.rung)

    def _job(self, which: str, task_index: int, task: dict, seed: int, episodes: int) -> HistoryJob:
        r = self.rung.name
        return HistoryJob(self.rung.env_id, task, dict(self.teacher), seed_of(r, "teacher", which, task_index, seed),
                          seed_of(r, "env", which, task_index, seed), int(episodes), "teacher", (1, 0.0))

    def scored_jobs(self) -> list[HistoryJob]:
        """Held-out teachers: every scored task x teacher seed, ``history_episodes`` long."""
        return [self._job(self.scored, j, t, s, self.rung.history_episodes)
                for j, t in enumerate(self.tasks) for s in range(self.teacher_seeds)]

    def train_jobs(self) -> list[HistoryJob]:
        """The transformer's training histories (whole learning runs on training tasks)."""
        tf = self.rung.transformer
        if tf is None:
            return []
        return [self._job("train", i, t, s, tf.train_episodes)
                for i, t in enumerate(self.split.train) for s in range(tf.seeds_per_task)]

    def all_jobs(self) -> list[HistoryJob]:
        return self.scored_jobs() + self.train_jobs()

    @staticmethod
    def path(job: HistoryJob) -> Path:
        return cache_dir("histories") / job.key()

    def ensure(self, *, progress: bool = False) -> None:
        ensure_histories(self.all_jobs(), cache_dir(), progress=progress)

    def scored_history(self, task_index: int, teacher_seed: int) -> LearningHistory:
        """The held-out teacher history of scored task ``task_index``."""
        job = self._job(self.scored, task_index, self.tasks[task_index], teacher_seed, self.rung.history_episodes)
        return LearningHistory.load(self.path(job), verify=False)

    def train_paths(self) -> list[Path]:
        return [self.path(j) for j in self.train_jobs()]

    def train_history(self, i: int) -> tuple[dict[str, Any], LearningHistory]:
        """Training history ``i`` (cycling) and its task: what a mixture is shown before Q3."""
        jobs = self.train_jobs() or [self._job("train", k, t, 0, self.rung.history_episodes)
                                     for k, t in enumerate(self.split.train)]
        job = jobs[i % len(jobs)]
        p = self.path(job)
        if not (p / "manifest.json").exists():
            ensure_histories([job], cache_dir())
        return job.task, LearningHistory.load(p, verify=False)


__all__ = ["stream", "seed_of", "tasks_of", "teacher_options", "episode_values", "RungData"]
