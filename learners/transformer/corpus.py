"""Which learning histories a transformer trains on: recorded, cached on disk, reused.

A ``DataSpec`` names an env family and its task split (``envs.tasks.task_split``), the
teachers, how many seeds per training task and how many episodes per history. ``build_corpus``
records every (training task, seed) history with the project's recorder (``learners.recorder``)
into ``<cache>/histories/<key>/`` — one directory per history, keyed by a hash of everything
that determines it, so specs that share histories share files and an interrupted build resumes
where it stopped — and packs them into a memory-mapped store (``learners.transformer.data``).
Held-out tasks (the split's ``test`` side) are recorded separately for validation and
teacher-forced tracking; they never enter a training store.

Sources:

* ``teacher`` — registered teachers (``learners.teachers``), e.g. tabular Q-learning on Dark
  Room, Thompson sampling on bandits. ``teachers`` is a list of ``{"name": ..., **options}``;
  history ``(task i, seed j)`` uses teacher ``(i * seeds_per_task + j) % len(teachers)``.
* ``noisy_optimal`` — AD-epsilon-style noise-injected histories (Zisman et al., 2024): the
  optimal policy of the task mixed with uniform noise whose weight falls linearly from 1 at the
  first episode to ``noise_final`` at episode ``noise_episodes``, so a history "improves" from
  random to near-optimal on a schedule chosen by the experimenter. ``teacher_probs`` is the
  exact mixture. Known for Dark Room and bandits.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from learners.history import HistoryError, LearningHistory
from learners.protocols import SampledAgent, Transition
from learners.transformer.data import PackedStore, pack_histories

SOURCES = ("teacher", "noisy_optimal")


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
        return _hash(self.to_dict())


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def task_split_of(spec: DataSpec):
    from envs.tasks import task_split

    return task_split(spec.env_id, seed=spec.split_seed, **spec.split)


# ---------------------------------------------------------------------------------------------
# The AD-eps source: an optimal policy with scheduled uniform noise
# ---------------------------------------------------------------------------------------------
def optimal_action_sets(env_id: str, task: dict[str, Any]) -> np.ndarray:
    """``[n_obs, A]`` bool: the optimal actions in each observation (Dark Room, bandits)."""
    if env_id == "hypospace/DarkRoom-v0":
        from envs.base import grid_moves

        size = int(task.get("size", 9))
        g = task["goal"]
        gr, gc = (g // size, g % size) if isinstance(g, int) else (int(g[0]), int(g[1]))
        moves = np.asarray(grid_moves(size))  # [S, 5]
        rows, cols = np.divmod(np.arange(size * size), size)
        dist = np.abs(rows - gr) + np.abs(cols - gc)
        nd = dist[moves]  # distance after each action
        return nd == np.minimum(nd.min(1, keepdims=True), dist[:, None])  # shortest-path moves; stay on the goal
    if env_id == "hypospace/Bandit-v0":
        m = np.asarray(task["means"], float)
        return (m == m.max())[None, :]
    raise ValueError(f"source 'noisy_optimal' knows no optimal policy for {env_id}")


class NoisyOptimal(SampledAgent):
    """Teacher for AD-eps histories: ``p = eps_e / A + (1 - eps_e) * uniform(optimal actions)``,
    ``eps_e`` falling linearly from 1 (episode 0) to ``final`` (episode ``episodes``). It does
    not learn: it only counts episodes."""

    name = "noisy_optimal"

    def __init__(self, optimal: np.ndarray, *, episodes: int, final: float, seed: int):
        self.optimal = np.asarray(optimal, bool)
        self.n_actions = int(self.optimal.shape[1])
        self.episodes, self.final, self.seed = int(episodes), float(final), int(seed)
        self.rng = np.random.default_rng(seed)
        self.episode = 0

    def epsilon(self) -> float:
        f = min(1.0, self.episode / self.episodes)
        return 1.0 + (self.final - 1.0) * f

    def action_probs(self, obs: Any) -> np.ndarray:
        opt = self.optimal[int(obs) if self.optimal.shape[0] > 1 else 0]
        eps = self.epsilon()
        return eps / self.n_actions + (1.0 - eps) * opt / opt.sum()

    def observe(self, transition: Transition, *, intervention: bool = True) -> None:
        if transition.done:
            self.episode += 1

    def values(self, obs: Any) -> None:
        return None

    def weights(self) -> dict[str, np.ndarray]:
        return {"episode": np.array([self.episode])}

    def load_weights(self, w: dict[str, np.ndarray]) -> None:
        self.episode = int(np.asarray(w["episode"])[0])

    def get_state(self) -> dict[str, Any]:
        return {"episode": self.episode, "rng": self.rng.bit_generator.state}

    def set_state(self, s: dict[str, Any]) -> None:
        self.episode = int(s["episode"])
        self.rng.bit_generator.state = s["rng"]

    def config(self) -> dict[str, Any]:
        return {"teacher": self.name, "seed": self.seed, "episodes": self.episodes, "final": self.final}


# ---------------------------------------------------------------------------------------------
# Recording and caching
# ---------------------------------------------------------------------------------------------
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
        return _hash(d)

    def record(self, out: Path | None) -> LearningHistory:
        import envs
        from learners.recorder import record
        from learners.teachers import make_teacher

        if self.source == "noisy_optimal":
            teacher = NoisyOptimal(optimal_action_sets(self.env_id, self.task), episodes=self.noise[0],
                                   final=self.noise[1], seed=self.teacher_seed)
        else:
            env = envs.make(self.env_id, **self.task)
            opts = {k: v for k, v in self.teacher.items() if k != "name"}
            teacher = make_teacher(self.teacher["name"], env.observation_space, env.action_space, seed=self.teacher_seed, **opts)
            env.close()
        return record(teacher, self.env_id, env_kwargs=self.task, episodes=self.episodes, seed=self.env_seed, out=out,
                      metadata={"job": self.key(), "task": self.task})


def _seed(*xs: int) -> int:
    return int(np.random.SeedSequence([int(x) for x in xs]).generate_state(1)[0] & 0x7FFFFFFF)


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
    out = []
    for i, task in enumerate(tasks):
        for j in range(n_seeds):
            teacher = spec.teachers[(i * n_seeds + j) % len(spec.teachers)]
            out.append(HistoryJob(spec.env_id, task, dict(teacher), _seed(spec.seed, salt, i, j, 0), _seed(spec.seed, salt, i, j, 1),
                                  spec.episodes, spec.source, (spec.noise_episodes, spec.noise_final)))
    return out


def _record_one(args: tuple[HistoryJob, str]) -> str:
    job, out = args
    p = Path(out)
    if not (p / "manifest.json").exists():
        job.record(p)
    return out


def ensure_histories(job_list: list[HistoryJob], cache_dir: str | os.PathLike, *, workers: int = 1,
                     progress: bool = False) -> list[Path]:
    """Record every job not yet cached under ``<cache>/histories/``; return their directories."""
    root = Path(cache_dir) / "histories"
    root.mkdir(parents=True, exist_ok=True)
    paths = [root / j.key() for j in job_list]
    todo = [(j, str(p)) for j, p in zip(job_list, paths) if not (p / "manifest.json").exists()]
    if todo:
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(todo), desc="record histories", unit="hist")
        if workers > 1:
            import multiprocessing as mp

            with mp.get_context("spawn").Pool(workers) as pool:
                for _ in pool.imap_unordered(_record_one, todo, chunksize=4):
                    if bar is not None:
                        bar.update(1)
        else:
            for t in todo:
                _record_one(t)
                if bar is not None:
                    bar.update(1)
        if bar is not None:
            bar.close()
    return paths


def build_corpus(spec: DataSpec, cache_dir: str | os.PathLike, *, which: str = "train",
                 last_episodes: int | None = None, workers: int = 1, progress: bool = False) -> PackedStore:
    """Record (if needed) and pack the ``which`` histories of ``spec``; returns the opened store.

    ``last_episodes`` packs only the final N episodes of each history (expert distillation)."""
    job_list = jobs(spec, which)
    if not job_list:
        raise ValueError(f"spec gives no {which} histories")
    name = f"{which}-{spec.key()}" + (f"-last{last_episodes}" if last_episodes else "")
    out = Path(cache_dir) / "packed" / name
    if not (out / "manifest.json").exists():
        paths = ensure_histories(job_list, cache_dir, workers=workers, progress=progress)
        try:
            pack_histories(paths, out, last_episodes=last_episodes, overwrite=True,
                           info={"spec": spec.to_dict(), "which": which, "histories": [p.name for p in paths]})
        except HistoryError as e:
            raise HistoryError(f"a cached history is unusable ({e}); delete it to re-record") from None
    return PackedStore.open(out)


__all__ = ["DataSpec", "NoisyOptimal", "optimal_action_sets", "jobs", "ensure_histories", "build_corpus", "HistoryJob", "SOURCES"]
