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
from learners.files import file_inside, read_json_object, sha256_file, to_jsonable, write_json_atomic
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
    """The optimizer state, step, RNG states and extras saved by ``save_checkpoint``; a state
    that is not shaped as ``save_checkpoint`` writes it raises ``CheckpointError`` naming the field."""
    where = Path(directory) / TRAIN_STATE
    st = load_state(where)

    def need(ok: bool, field: str, what: str) -> None:
        if not ok:
            raise CheckpointError(f"{where}: field '{field}' is not {what}")

    need(isinstance(st, dict), "tree", "an object")
    need(isinstance(st.get("step"), int) and not isinstance(st.get("step"), bool) and st["step"] >= 0, "step",
         "a step count")
    opt = st.get("optimizer")
    need(isinstance(opt, dict) and isinstance(opt.get("state"), dict), "optimizer.state", "an object")
    need(isinstance(opt.get("param_groups"), list) and all(isinstance(g, dict) for g in opt["param_groups"]),
         "optimizer.param_groups", "a list of objects")
    need(all(k.isascii() and k.isdigit() and isinstance(v, dict) for k, v in opt["state"].items()), "optimizer.state",
         "parameter numbers -> objects")
    rng = st.get("rng")
    need(isinstance(rng, dict), "rng", "an object")
    need(isinstance(rng.get("torch"), torch.Tensor) and rng["torch"].dtype == torch.uint8, "rng.torch", "a uint8 tensor")
    need(isinstance(rng.get("numpy"), dict), "rng.numpy", "a numpy generator state")
    need(isinstance(rng.get("python"), (list, tuple)), "rng.python", "a Python random state")
    st["optimizer"] = _optimizer_state(opt)
    return st


def read_meta(directory: str | os.PathLike) -> dict[str, Any]:
    d = Path(directory)
    mp = file_inside(d, META,
                     error=CheckpointError, container="the checkpoint directory", where="the checkpoint's metadata",
                     must_exist=False)
    meta = read_json_object(mp, CheckpointError, missing=f"{d}: not a checkpoint ({META} missing)",
                            what="checkpoint metadata")
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{mp}: format {meta.get('format')!r}, expected {FORMAT!r}")
    for field in ("model", "train", "data", "sha256"):
        if field in meta and not isinstance(meta[field], dict):
            raise CheckpointError(f"{mp}: field '{field}' is a {type(meta[field]).__name__}, expected an object")
    return meta


def verify_weights(d: Path, meta: dict[str, Any]) -> None:
    p = file_inside(Path(d), WEIGHTS,
                    error=CheckpointError, container="the checkpoint directory", where="the checkpoint's weights",
                    must_exist=False)
    if not p.exists():
        raise CheckpointError(f"{p}: missing")
    sums = meta.get("sha256", {})
    want = sums.get(WEIGHTS) if isinstance(sums, dict) else None
    if want is None or sha256_file(p) != want:
        raise CheckpointError(f"{p}: corrupt (sha256 does not match {META})")


def config_diff(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """``field: saved != given`` for every field whose JSON value differs."""
    keys = sorted(set(a) | set(b))
    return [f"{k}: {a.get(k)!r} != {b.get(k)!r}" for k in keys if json.dumps(a.get(k), sort_keys=True) != json.dumps(b.get(k), sort_keys=True)]


def _read_weights(d: Path, meta: dict[str, Any]) -> dict[str, torch.Tensor]:
    verify_weights(d, meta)
    try:
        return load_file(str(d / WEIGHTS))
    except Exception as e:  # noqa: BLE001 - safetensors raises its own error types
        raise CheckpointError(f"{d / WEIGHTS}: unreadable ({e})") from None


def _fit(d: Path, sd: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    """Refuse weights whose names, shapes or dtypes are not the model's (``load_state_dict``
    would raise its own error on a shape and silently cast a dtype)."""
    missing, unexpected = sorted(set(want) - set(sd)), sorted(set(sd) - set(want))
    if missing or unexpected:
        raise CheckpointError(f"{d}: weights do not fit the model (missing {missing}, unexpected {unexpected})")
    for k, v in want.items():
        if sd[k].shape != v.shape or sd[k].dtype != v.dtype:
            raise CheckpointError(f"{d / WEIGHTS}: tensor '{k}' is {sd[k].dtype} {tuple(sd[k].shape)}, "
                                  f"the model's is {v.dtype} {tuple(v.shape)}")


def load_model_weights(model: ADTransformer, directory: str | os.PathLike) -> dict[str, Any]:
    """Load ``model.safetensors`` of a checkpoint (or final model dir) into ``model``.

    Refuses a corrupt file and a checkpoint of another model config, naming the fields."""
    d = Path(directory)
    meta = read_meta(d)
    verify_weights(d, meta)
    diff = config_diff(meta.get("model", {}), model.cfg.to_dict())
    if diff:
        raise CheckpointError(f"{d}: made for another model config ({'; '.join(diff)})")
    sd = _read_weights(d, meta)
    _fit(d, sd, model.state_dict())
    model.load_state_dict(sd)
    return meta


def model_from_checkpoint(directory: str | os.PathLike, device: str = "cpu") -> tuple[ADTransformer, dict[str, Any]]:
    """Build the model a checkpoint (or final model dir) describes and load its weights.

    The config in ``meta.json`` is first built on torch's meta device (no memory) and checked
    against the weights' names and shapes: a config that lies (say a huge ``d_model``) is
    refused before anything is allocated."""
    d = Path(directory)
    meta = read_meta(d)
    sd = _read_weights(d, meta)
    try:
        cfg = ModelConfig.from_dict(meta["model"])
        # Every block holds tensors: more blocks than tensors in the file is a lie, refused before
        # building even a shapeless model (a million blocks take minutes on the meta device too).
        if not 0 <= cfg.n_layer <= len(sd):
            raise ValueError(f"n_layer {cfg.n_layer} for {len(sd)} tensors in {WEIGHTS}")
        with torch.device("meta"):
            shapes = ADTransformer(cfg).state_dict()
    except Exception as e:  # noqa: BLE001 - any field of any type may have been edited in
        raise CheckpointError(f"{d / META}: bad model config in field 'model' ({type(e).__name__}: {e})") from None
    _fit(d, sd, shapes)
    model = ADTransformer(cfg)
    load_model_weights(model, d)
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
