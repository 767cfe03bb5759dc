"""Which learning histories a transformer trains on.

A ``DataSpec`` names an env family and its task split (``envs.tasks.task_split``), the
teachers, how many seeds per training task and how many episodes per history. ``build_corpus``
has the histories recorded and cached by ``learners.corpus`` (``<cache>/histories/<key>/``)
and packs them into a memory-mapped store (``learners.transformer.data``) under
``<cache>/packed/``. Held-out tasks (the split's ``test`` side) are recorded separately for
validation and teacher-forced tracking; they never enter a training store.

Sources (``learners.corpus``): ``teacher`` — the registered teachers of ``teachers`` (a list of
``{"name": ..., **options}``, cycled over histories); ``noisy_optimal`` — AD-eps noise-injected
histories (``learners.teachers.noisy_optimal``), the noise falling from 1 at the first episode
to ``noise_final`` at episode ``noise_episodes``.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envs.tasks import task_split
from learners.cache import cache_root
from learners.corpus import SOURCES, HistoryJob, config_key, ensure_histories, task_jobs
from learners.history import HistoryError
from learners.transformer.data import PackedStore, pack_histories


@dataclass
class DataSpec:
    """What to record: env, task split, teachers, seeds and lengths (every field is a CLI flag)."""

    env_id: str = field(default="hypospace/DarkRoom-v0", metadata={"help": "environment id (its task split gives train/test tasks)"})
    split: dict = field(default_factory=lambda: {"size": 9}, metadata={"help": "kwargs of envs.tasks.task_split (sizes and counts), JSON"})
    split_seed: int = field(default=0, metadata={"help": "seed of the train/test task split"})
    source: str = field(default="teacher", metadata={"help": "'teacher' (registered learners) or 'noisy_optimal' (AD-eps noise-injected optimal policy)", "choices": SOURCES})
    teachers: list = field(default_factory=lambda: [{"name": "q_learning"}], metadata={"help": "teachers as [{\"name\": ..., option: value}], cycled over histories, JSON"})
    seeds_per_task: int = field(default=8, metadata={"help": "histories (teacher seeds) per training task"})
    episodes: int = field(default=120, metadata={"help": "episodes per recorded history"})
    max_train_tasks: int = field(default=0, metadata={"help": "use only the first N training tasks (0 = all)"})
    noise_episodes: int = field(default=60, metadata={"help": "noisy_optimal: episodes over which the noise falls from 1 to noise_final"})
    noise_final: float = field(default=0.0, metadata={"help": "noisy_optimal: noise weight after noise_episodes"})
    val_tasks: int = field(default=16, metadata={"help": "held-out (test) tasks recorded for validation and teacher-forced tracking"})
    val_seeds: int = field(default=1, metadata={"help": "histories per held-out task"})
    seed: int = field(default=0, metadata={"help": "base seed of the recorded histories"})

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"source {self.source!r} is not one of {SOURCES}")
        if not isinstance(self.teachers, list) or not self.teachers or not all(isinstance(t, dict) and "name" in t for t in self.teachers):
            raise ValueError(f"teachers must be a non-empty list of {{\"name\": ...}} dicts, got {self.teachers!r}")
        for name in ("seeds_per_task", "episodes"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.val_tasks < 0 or self.val_seeds < 0 or self.max_train_tasks < 0:
            raise ValueError("val_tasks, val_seeds and max_train_tasks must be >= 0")
        if not 0.0 <= self.noise_final <= 1.0 or self.noise_episodes < 1:
            raise ValueError("noise_final must be in [0, 1] and noise_episodes >= 1")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def key(self) -> str:
        return config_key(self.to_dict())


def task_split_of(spec: DataSpec):
    return task_split(spec.env_id, seed=spec.split_seed, **spec.split)


def jobs(spec: DataSpec, which: str = "train") -> list[HistoryJob]:
    """The histories a spec asks for: ``which`` is 'train' or 'val' (held-out tasks)."""
    split = task_split_of(spec)
    if which == "train":
        tasks = split.train[: spec.max_train_tasks or None]
        n_seeds, salt = spec.seeds_per_task, 1
    elif which == "val":
        tasks = split.test[: spec.val_tasks]
        n_seeds, salt = spec.val_seeds, 2
    else:
        raise ValueError(f"which must be 'train' or 'val', got {which!r}")
    return task_jobs(spec.env_id, tasks, teachers=spec.teachers, seeds_per_task=n_seeds, episodes=spec.episodes,
                     seed=spec.seed, salt=salt, source=spec.source, noise=(spec.noise_episodes, spec.noise_final))


def build_corpus(spec: DataSpec, cache_dir: str | os.PathLike | None = None, *, which: str = "train",
                 last_episodes: int | None = None, workers: int = 1, progress: bool = False) -> PackedStore:
    """Record (if needed) and pack the ``which`` histories of ``spec``; returns the opened store.

    ``last_episodes`` packs only the final N episodes of each history (expert distillation)."""
    job_list = jobs(spec, which)
    if not job_list:
        raise ValueError(f"spec gives no {which} histories")
    name = f"{which}-{spec.key()}" + (f"-last{last_episodes}" if last_episodes else "")
    out = Path(cache_root() if cache_dir is None else cache_dir) / "packed" / name
    if not (out / "manifest.json").exists():
        paths = ensure_histories(job_list, cache_dir, workers=workers, progress=progress)
        try:
            pack_histories(paths, out, last_episodes=last_episodes, overwrite=True,
                           info={"spec": spec.to_dict(), "which": which, "histories": [p.name for p in paths]})
        except HistoryError as e:
            raise HistoryError(f"a cached history is unusable ({e}); delete it to re-record") from None
    return PackedStore.open(out)


__all__ = ["DataSpec", "jobs", "build_corpus", "task_split_of"]
