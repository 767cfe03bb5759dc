"""The two imitators of a rung, built the same way for every cell.

* The **mixture** (``learners.solomonoff.Mixture``) is built for the rung's env at the rung's
  budget, once per worker process (the build enumerates and probes the program space); every
  cell works on a clone.
* The **transformer** (``learners.transformer``) is trained per (rung, variant, T, training
  seed) on the rung's training-task histories, a cached artifact keyed by a hash of everything
  that determines it: ``within`` = whole histories, ``beyond`` = every training history cut at
  T episodes (the model never saw learning past T), ``expert`` = each history's final episodes
  (expert distillation, the control). Training is resumable (the loop's own checkpoints).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from experiments.study.data import RungData
from experiments.study.rungs import Rung
from learners.cache import cache_dir
from learners.history import LearningHistory
from learners.solomonoff import Mixture
from learners.transformer.checkpoint import latest_checkpoint, model_from_checkpoint
from learners.transformer.data import PackedStore, pack_histories
from learners.transformer.model import ADTransformer, ModelConfig
from learners.transformer.presets import env_model_fields
from learners.transformer.train import TrainConfig, train

VARIANTS = ("within", "beyond", "expert")


@lru_cache(maxsize=8)
def _built_mixture(env_id: str, task_json: str, spec_json: str) -> Mixture:
    spec = json.loads(spec_json)
    return Mixture.for_env(env_id, spec["max_bits"], env_kwargs=json.loads(task_json),
                           part_budgets=spec.get("part_budgets"), kind_budgets=spec.get("kind_budgets"),
                           probe_length=spec["probe_length"], probe_count=spec["probe_count"])


def mixture_for(rung: Rung, task: dict[str, Any]) -> Mixture:
    """A fresh mixture (clone of the process's built one) for ``task`` of the rung."""
    assert rung.mixture is not None
    spec = json.dumps(dataclasses.asdict(rung.mixture), sort_keys=True)
    # The grammar depends only on the env's spaces (and the probes on its episode length), not
    # on the task, so one build serves every task of the rung.
    space_kw = {k: v for k, v in task.items() if k in ("size", "n", "n_arms", "episode_len")}
    return _built_mixture(rung.env_id, json.dumps(space_kw, sort_keys=True), spec).clone()


def _key(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class ModelJob:
    """One transformer to train: a rung, a variant, a truncation point (beyond) and a seed."""

    rung: str
    variant: str
    T: int | None
    train_seed: int

    def describe(self) -> str:
        return f"{self.rung}/{self.variant}{'' if self.T is None else f'@T={self.T}'}/seed {self.train_seed}"


def _configs(rung: Rung, job: ModelJob) -> tuple[ModelConfig, TrainConfig, dict[str, Any]]:
    tf = rung.transformer
    assert tf is not None
    model = {**env_model_fields(rung.env_id, rung.split), **tf.model}
    trn = dict(tf.train)
    trn["seed"] = int(job.train_seed)
    if job.variant == "expert":
        trn["last_episodes"] = int(tf.expert_last)
        trn["subsample"] = [1]
    if job.variant == "beyond":
        # Windows of whole episodes must fit inside a history cut at T.
        trn["subsample"] = [k for k in trn.get("subsample", [1]) if k < job.T] or [1]
    return ModelConfig(**model), TrainConfig(**trn), {"model": model, "train": trn}


def _pack(data: RungData, variant: str, T: int | None) -> Path:
    """The packed training store of a variant (cached; shared by every training seed)."""
    tf = data.rung.transformer
    assert tf is not None
    paths = data.train_paths()
    key = _key({"histories": [p.name for p in paths], "variant": variant, "T": T, "last": tf.expert_last})
    out = cache_dir("packed") / key
    if not (out / "manifest.json").exists():
        if variant == "beyond":
            hist: list[Any] = [LearningHistory.load(p, verify=False).first_episodes(int(T)) for p in paths]
        else:
            hist = list(paths)
        pack_histories(hist, out, overwrite=True, last_episodes=tf.expert_last if variant == "expert" else None,
                       info={"rung": data.rung.name, "variant": variant, "T": T})
    return out


#: Training settings that decide how often a run logs, evaluates or checkpoints, never the weights
#: it ends with (a resumed run continues exactly): they stay out of a model's cache key.
BOOKKEEPING = ("log_every", "eval_every", "eval_batches", "checkpoint_every", "keep_checkpoints")


def model_run_dir(data: RungData, job: ModelJob) -> Path:
    """The cache entry of a model, keyed by what decides its weights only: the job, the model and
    optimisation settings, and the training histories (by their own keys). A rung's evaluation
    settings (T grid, conditioning, budgets of other imitators) are not in it, so changing them
    never retrains a model."""
    _, _, cfg = _configs(data.rung, job)
    cfg = {**cfg, "train": {k: v for k, v in cfg["train"].items() if k not in BOOKKEEPING}}
    key = _key({"format": 2, "job": dataclasses.asdict(job), "cfg": cfg, "histories": [p.name for p in data.train_paths()]})
    return cache_dir("models") / key


def pack_for(data: RungData, job: ModelJob) -> Path:
    return _pack(data, "within" if job.variant == "within" else job.variant, job.T if job.variant == "beyond" else None)


def ensure_model(data: RungData, job: ModelJob) -> Path:
    """Train (or resume training) the model of ``job``; returns its run directory."""
    run = model_run_dir(data, job)
    if (run / "model" / "meta.json").exists():
        return run
    model_cfg, train_cfg, cfg = _configs(data.rung, job)
    store = PackedStore.open(pack_for(data, job))
    torch.set_num_threads(1)
    train(model_cfg, train_cfg, store, run, resume=latest_checkpoint(run) is not None, progress=False,
          data_info={"rung": data.rung.name, "variant": job.variant, "T": job.T, **cfg})
    return run


def load_model(data: RungData, job: ModelJob) -> ADTransformer:
    run = model_run_dir(data, job)
    if not (run / "model" / "meta.json").exists():
        raise FileNotFoundError(f"the transformer {job.describe()} has not been trained ({run})")
    model, _ = model_from_checkpoint(run / "model")
    return model


__all__ = ["mixture_for", "ModelJob", "ensure_model", "load_model", "model_run_dir", "pack_for", "VARIANTS"]
