"""Saving and loading the AD transformer: the exported model and the training checkpoints.

A *model directory* holds ``model.safetensors`` and ``meta.json`` (the model, train and data
configs and the sha256 of the weights): what an agent needs to act. A *training checkpoint*
``checkpoints/step_XXXXXXXX/`` is a model directory plus ``train_state/``, the optimizer, step,
RNG states and log accumulators in the project's pickle-free checkpoint format
(``learners.checkpoint``), so ``--resume`` after a kill continues exactly. Both are written under
``<name>.partial`` and renamed when complete.
"""
from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from learners.checkpoint import load_state, save_state
from learners.errors import CheckpointError
from learners.files import read_json, sha256_file, to_jsonable, write_json_atomic
from learners.transformer.model import ADTransformer, ModelConfig

FORMAT = "hypospace.transformer.checkpoint/2"
WEIGHTS = "model.safetensors"
META = "meta.json"
TRAIN_STATE = "train_state"
_STEP_DIR = re.compile(r"step_\d{8}")


def step_dir(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"step_{int(step):08d}"


def _write_model(part: Path, model: ADTransformer, meta: dict[str, Any]) -> None:
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(part / WEIGHTS))
    write_json_atomic(part / META, to_jsonable({"format": FORMAT, **meta, "sha256": {WEIGHTS: sha256_file(part / WEIGHTS)}}),
                      sort_keys=True)


def _publish(part: Path, directory: Path) -> Path:
    if directory.exists():
        shutil.rmtree(directory)
    os.rename(part, directory)
    return directory


def _fresh_partial(directory: Path) -> Path:
    part = directory.with_name(directory.name + ".partial")
    if part.exists():
        shutil.rmtree(part)
    part.mkdir(parents=True)
    return part


def export_model(model: ADTransformer, directory: Path, configs: dict[str, Any]) -> Path:
    """The final model for acting: ``model.safetensors`` + ``meta.json`` (no optimizer)."""
    part = _fresh_partial(Path(directory))
    _write_model(part, model, {"step": None, **configs})
    return _publish(part, Path(directory))


# -- the RNG streams a resumed run must continue ----------------------------------------------
def rng_state() -> dict[str, Any]:
    st = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(legacy=False), "python": random.getstate()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict[str, Any]) -> None:
    torch.set_rng_state(st["torch"])
    np.random.set_state(st["numpy"])
    random.setstate(st["python"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def _optimizer_tree(sd: dict[str, Any]) -> dict[str, Any]:
    # The checkpoint tree has string keys only; torch numbers the parameters' states.
    return {"state": {str(k): v for k, v in sd["state"].items()}, "param_groups": sd["param_groups"]}


def _optimizer_state(tree: dict[str, Any]) -> dict[str, Any]:
    return {"state": {int(k): v for k, v in tree["state"].items()}, "param_groups": tree["param_groups"]}


def save_checkpoint(directory: Path, *, model: ADTransformer, optimizer: torch.optim.Optimizer, step: int,
                    configs: dict[str, Any], extra: dict[str, Any] | None = None) -> Path:
    """Write a training checkpoint directory atomically (``<dir>.partial`` renamed when complete)."""
    directory = Path(directory)
    part = _fresh_partial(directory)
    _write_model(part, model, {"step": int(step), **configs})
    save_state(part / TRAIN_STATE, {"optimizer": _optimizer_tree(optimizer.state_dict()), "step": int(step),
                                    "rng": rng_state(), **(extra or {})})
    return _publish(part, directory)


def load_train_state(directory: Path) -> dict[str, Any]:
    """The optimizer state, step, RNG states and extras saved by ``save_checkpoint``."""
    st = load_state(Path(directory) / TRAIN_STATE)
    st["optimizer"] = _optimizer_state(st["optimizer"])
    return st


def read_meta(directory: str | os.PathLike) -> dict[str, Any]:
    d = Path(directory)
    mp = d / META
    meta = read_json(mp, CheckpointError, missing=f"{d}: not a checkpoint ({META} missing)")
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{mp}: format {meta.get('format')!r}, expected {FORMAT!r}")
    return meta


def verify_weights(d: Path, meta: dict[str, Any]) -> None:
    p = Path(d) / WEIGHTS
    if not p.exists():
        raise CheckpointError(f"{p}: missing")
    want = meta.get("sha256", {}).get(WEIGHTS)
    if want is None or sha256_file(p) != want:
        raise CheckpointError(f"{p}: corrupt (sha256 does not match {META})")


def config_diff(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """``field: saved != given`` for every field whose JSON value differs."""
    keys = sorted(set(a) | set(b))
    return [f"{k}: {a.get(k)!r} != {b.get(k)!r}" for k in keys if json.dumps(a.get(k), sort_keys=True) != json.dumps(b.get(k), sort_keys=True)]


def load_model_weights(model: ADTransformer, directory: str | os.PathLike) -> dict[str, Any]:
    """Load ``model.safetensors`` of a checkpoint (or final model dir) into ``model``.

    Refuses a corrupt file and a checkpoint of another model config, naming the fields."""
    d = Path(directory)
    meta = read_meta(d)
    verify_weights(d, meta)
    diff = config_diff(meta.get("model", {}), model.cfg.to_dict())
    if diff:
        raise CheckpointError(f"{d}: made for another model config ({'; '.join(diff)})")
    try:
        sd = load_file(str(d / WEIGHTS))
    except Exception as e:  # safetensors raises its own error types
        raise CheckpointError(f"{d / WEIGHTS}: unreadable ({e})") from None
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise CheckpointError(f"{d}: weights do not fit the model (missing {missing}, unexpected {unexpected})")
    return meta


def model_from_checkpoint(directory: str | os.PathLike, device: str = "cpu") -> tuple[ADTransformer, dict[str, Any]]:
    """Build the model a checkpoint (or final model dir) describes and load its weights."""
    meta = read_meta(directory)
    try:
        cfg = ModelConfig.from_dict(meta["model"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{directory}: bad model config in {META} ({e})") from None
    model = ADTransformer(cfg)
    load_model_weights(model, directory)
    return model.to(device).eval(), meta


def _complete(root: Path) -> list[Path]:
    if not root.exists():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and _STEP_DIR.fullmatch(p.name) and (p / META).exists())


def latest_checkpoint(run_dir: Path) -> Path | None:
    done = _complete(Path(run_dir) / "checkpoints")
    return done[-1] if done else None


def prune_checkpoints(run_dir: Path, keep_n: int, keep: Path) -> None:
    """Delete all but the newest ``keep_n`` (at least 1) checkpoints, never ``keep``."""
    done = _complete(Path(run_dir) / "checkpoints")
    for p in done[: max(0, len(done) - max(1, keep_n))]:
        if p != keep:
            shutil.rmtree(p, ignore_errors=True)


__all__ = ["FORMAT", "export_model", "save_checkpoint", "load_train_state", "read_meta", "verify_weights", "config_diff",
           "load_model_weights", "model_from_checkpoint", "latest_checkpoint", "prune_checkpoints", "step_dir",
           "rng_state", "set_rng_state", "CheckpointError"]
