"""Corpora of learning histories: many (task, teacher, seed) runs recorded with the recorder and
cached on disk, one directory per history under ``<cache>/histories/<key>/``, keyed by a hash of
everything that determines it. Specs that share histories share files, and an interrupted build
resumes where it stopped (a history is trusted only once its manifest exists, which the
recorder writes last).

Sources of a job:

* ``teacher`` — a registered teacher (``learners.teachers``) named by ``teacher = {"name": ...,
  **options}``, e.g. tabular Q-learning on Dark Room, Thompson sampling on bandits;
* ``noisy_optimal`` — the registered AD-eps teacher (``learners.teachers.noisy_optimal``) on the
  task's optimal actions (``env.unwrapped.optimal_actions()``), its noise schedule ``noise =
  (episodes, final)``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from tqdm import tqdm

import envs
from learners.cache import cache_root
from learners.history import LearningHistory
from learners.recorder import record
from learners.teachers import make_teacher

SOURCES = ("teacher", "noisy_optimal")


def config_key(obj: Any) -> str:
    """16 hex digits of the sha256 of ``obj`` as sorted JSON: the cache key of a configuration."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def history_seed(*xs: int) -> int:
    """A 31-bit seed derived from integers (SeedSequence: nearby inputs give unrelated seeds)."""
    return int(np.random.SeedSequence([int(x) for x in xs]).generate_state(1)[0] & 0x7FFFFFFF)


@dataclass(frozen=True)
class HistoryJob:
    """One history to record: a task, a teacher, seeds, a length."""

    env_id: str
    task: dict
    teacher: dict
    teacher_seed: int
    env_seed: int
    episodes: int
    source: str
    noise: tuple[int, float]

    def key(self) -> str:
        d = dataclasses.asdict(self)
        if self.source != "noisy_optimal":
            d.pop("noise")
        return config_key(d)

    def make_teacher(self) -> Any:
        env = envs.make(self.env_id, **self.task)
        if self.source == "noisy_optimal":
            name = "noisy_optimal"
            opts = {"noise_episodes": self.noise[0], "noise_final": self.noise[1], "optimal": env.unwrapped.optimal_actions().tolist()}
        else:
            name = self.teacher["name"]
            opts = {k: v for k, v in self.teacher.items() if k != "name"}
        teacher = make_teacher(name, env.observation_space, env.action_space, seed=self.teacher_seed, **opts)
        env.close()
        return teacher

    def record(self, out: Path | None) -> LearningHistory:
        return record(self.make_teacher(), self.env_id, env_kwargs=self.task, episodes=self.episodes, seed=self.env_seed,
                      out=out, metadata={"job": self.key(), "task": self.task})


def task_jobs(env_id: str, tasks: Sequence[dict], *, teachers: Sequence[dict], seeds_per_task: int, episodes: int,
              seed: int, salt: int, source: str = "teacher", noise: tuple[int, float] = (60, 0.0)) -> list[HistoryJob]:
    """``seeds_per_task`` histories of every task; history ``(task i, seed j)`` uses teacher
    ``(i * seeds_per_task + j) % len(teachers)`` and seeds derived from ``(seed, salt, i, j)``."""
    if source not in SOURCES:
        raise ValueError(f"source {source!r} is not one of {SOURCES}")
    out = []
    for i, task in enumerate(tasks):
        for j in range(seeds_per_task):
            teacher = teachers[(i * seeds_per_task + j) % len(teachers)]
            out.append(HistoryJob(env_id, task, dict(teacher), history_seed(seed, salt, i, j, 0),
                                  history_seed(seed, salt, i, j, 1), episodes, source, noise))
    return out


def histories_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """``<cache_dir>/histories`` (default cache: ``learners.cache``, i.e. ``$HYPOSPACE_CACHE``)."""
    p = Path(cache_root() if cache_dir is None else cache_dir) / "histories"
    p.mkdir(parents=True, exist_ok=True)
    return p


def record_job(args: tuple[HistoryJob, str]) -> str:
    """Record one job into its directory unless it is already there (a worker's task)."""
    job, out = args
    p = Path(out)
    if not (p / "manifest.json").exists():
        job.record(p)
    return out


def ensure_histories(job_list: list[HistoryJob], cache_dir: str | os.PathLike | None = None, *, workers: int = 1,
                     progress: bool = False) -> list[Path]:
    """Record every job not yet cached under ``<cache_dir>/histories/``; return their directories."""
    root = histories_dir(cache_dir)
    paths = [root / j.key() for j in job_list]
    todo = [(j, str(p)) for j, p in zip(job_list, paths) if not (p / "manifest.json").exists()]
    if not todo:
        return paths
    with tqdm(total=len(todo), desc="record histories", unit="hist", disable=not progress) as bar:
        if workers > 1:
            # spawn: every worker starts from a clean interpreter, not a copy of this process's threads.
            with multiprocessing.get_context("spawn").Pool(workers) as pool:
                for _ in pool.imap_unordered(record_job, todo, chunksize=4):
                    bar.update(1)
        else:
            for t in todo:
                record_job(t)
                bar.update(1)
    return paths


__all__ = ["HistoryJob", "SOURCES", "config_key", "history_seed", "task_jobs", "histories_dir", "record_job",
           "ensure_histories"]
