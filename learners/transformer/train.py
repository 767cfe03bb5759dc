"""The training loop (one loop, no model code — nanoGPT's ``train.py`` in spirit).

AdamW with warmup + cosine decay, gradient clipping, next-action loss at every token (KL to
``teacher_probs`` by default, or cross-entropy on the teacher's actions), CSV logs (TensorBoard
when installed), checkpoints that hold the whole state, and data parallelism through
``torch.distributed`` (``torchrun --nproc-per-node N``: gloo on CPU, NCCL on GPU).

Reproducibility, by construction:

* batch ``s`` is a pure function of ``(data seed, s)`` (``WindowSampler``), so the sampler's
  position is the step;
* every micro-batch reseeds torch's generator from ``(seed, step, micro-batch index)`` before
  its forward pass, so dropout masks depend only on which rows of the global batch it holds —
  not on how many processes share the batch. ``N`` processes with ``micro_batches = M / N``
  each compute the very same micro-batches as 1 process with ``M``; gradients are summed over
  all micro-batches (each weighted by its share of the global batch's tokens);
* a checkpoint holds model, optimizer, step (which fixes schedule and sampler) and every RNG
  state, so ``--resume`` after a kill continues exactly: same final weights as an unkilled run.

Checkpoints are directories ``checkpoints/step_XXXXXXXX/`` with ``model.safetensors``,
``train_state.pt`` (read back with ``torch.load(weights_only=True)``) and ``meta.json`` (configs
and the sha256 of both files), written under a temporary name and renamed when complete.
"""
from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from learners.files import sha256_file
from learners.transformer.data import Batch, DataError, PackedStore, WindowSampler
from learners.transformer.model import ADTransformer, ModelConfig, param_groups

LOSSES = ("kl", "ce")
CKPT_FORMAT = "hypospace.transformer.checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint that is corrupt, incomplete, or made for another model/run config."""


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping (every field is a CLI flag)."""

    steps: int = field(default=2000, metadata={"help": "optimizer updates"})
    batch_size: int = field(default=32, metadata={"help": "global batch, in windows (context-length token sequences)"})
    micro_batches: int = field(default=1, metadata={"help": "micro-batches per update over all processes (gradient accumulation); must be a multiple of the world size"})
    lr: float = field(default=1e-3, metadata={"help": "peak learning rate"})
    min_lr: float = field(default=1e-4, metadata={"help": "learning rate at the end of the cosine decay"})
    warmup_steps: int = field(default=100, metadata={"help": "linear warmup updates"})
    weight_decay: float = field(default=0.1, metadata={"help": "AdamW weight decay (matrices and embeddings only)"})
    beta1: float = field(default=0.9, metadata={"help": "AdamW beta1"})
    beta2: float = field(default=0.99, metadata={"help": "AdamW beta2"})
    grad_clip: float = field(default=1.0, metadata={"help": "clip the global gradient norm to this (0 = off)"})
    loss: str = field(default="kl", metadata={"help": "'kl' (to teacher_probs) or 'ce' (on the teacher's actions)", "choices": LOSSES})
    subsample: list = field(default_factory=lambda: [1], metadata={"help": "episode strides k of the windows (each window draws one), JSON list"})
    last_episodes: int = field(default=0, metadata={"help": "train only on each history's final N episodes (expert distillation; 0 = all)"})
    seed: int = field(default=0, metadata={"help": "seed of initialisation, batches and dropout"})
    log_every: int = field(default=25, metadata={"help": "updates between log rows"})
    eval_every: int = field(default=250, metadata={"help": "updates between validation losses on held-out histories (0 = off)"})
    eval_batches: int = field(default=4, metadata={"help": "batches of held-out windows per validation"})
    checkpoint_every: int = field(default=500, metadata={"help": "updates between checkpoints (and one at the end)"})
    keep_checkpoints: int = field(default=2, metadata={"help": "checkpoints kept on disk"})

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss {self.loss!r} is not one of {LOSSES}")
        if self.steps < 1 or self.batch_size < 1 or self.micro_batches < 1:
            raise ValueError("steps, batch_size and micro_batches must be >= 1")
        if self.batch_size % self.micro_batches:
            raise ValueError(f"batch_size {self.batch_size} is not divisible by micro_batches {self.micro_batches}")
        if not isinstance(self.subsample, list) or not self.subsample or min(int(k) for k in self.subsample) < 1:
            raise ValueError(f"subsample must be a non-empty list of strides >= 1, got {self.subsample!r}")
        if self.lr <= 0 or self.min_lr < 0 or self.warmup_steps < 0:
            raise ValueError("lr must be > 0, min_lr and warmup_steps >= 0")


# Fields that may differ between a run and its resumption without changing the result.
_RESUMABLE_DIFFS = {"log_every", "checkpoint_every", "keep_checkpoints", "eval_every", "eval_batches"}


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to ``lr`` then cosine decay to ``min_lr`` at ``steps``."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(1, cfg.steps - cfg.warmup_steps)
    frac = min(1.0, (step - cfg.warmup_steps) / span)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1.0 + math.cos(math.pi * frac))


def token_loss(logits: torch.Tensor, batch: Batch, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token loss ``[B, K]`` (nats) and the per-token KL to teacher_probs (nats, for logs)."""
    logp = F.log_softmax(logits.float(), dim=-1)
    p = batch.teacher_probs
    plogp = torch.where(p > 0, p * torch.log(p.clamp_min(1e-30)), torch.zeros_like(p)).sum(-1)
    kl = plogp - (p * logp).sum(-1)
    if kind == "kl":
        return kl, kl.detach()
    ce = -logp.gather(-1, batch.target.unsqueeze(-1)).squeeze(-1)
    return ce, kl.detach()


# ---------------------------------------------------------------------------------------------
# Distributed helpers
# ---------------------------------------------------------------------------------------------
@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str) -> Dist:
    """Join the process group when launched by torchrun (``WORLD_SIZE`` > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist

    backend = "nccl" if device.startswith("cuda") else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return Dist(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def _barrier(d: Dist) -> None:
    if d.world > 1:
        import torch.distributed as dist

        dist.barrier()


# ---------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------
def _np_to_torch(x: Any) -> Any:
    """numpy arrays inside an RNG state -> tensors (weights_only loads tensors, not numpy objects)."""
    if isinstance(x, dict):
        return {k: _np_to_torch(v) for k, v in x.items()}
    if isinstance(x, np.ndarray):
        return {"__ndarray__": torch.from_numpy(x.astype(np.int64)), "dtype": x.dtype.str}
    if isinstance(x, np.generic):
        return x.item()
    return x


def _torch_to_np(x: Any) -> Any:
    if isinstance(x, dict):
        if "__ndarray__" in x:
            return x["__ndarray__"].numpy().astype(np.dtype(x["dtype"]))
        return {k: _torch_to_np(v) for k, v in x.items()}
    return x


def _rng_state() -> dict[str, Any]:
    st = {"torch": torch.get_rng_state(), "numpy": _np_to_torch(np.random.get_state(legacy=False)),
          "python": random.getstate()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict[str, Any]) -> None:
    torch.set_rng_state(st["torch"])
    np.random.set_state(_torch_to_np(st["numpy"]))
    random.setstate(st["python"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def save_checkpoint(directory: Path, *, model: ADTransformer, optimizer: torch.optim.Optimizer, step: int,
                    configs: dict[str, Any], extra: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint directory atomically (``<dir>.partial`` renamed when complete)."""
    from safetensors.torch import save_file

    part = directory.with_name(directory.name + ".partial")
    if part.exists():
        shutil.rmtree(part)
    part.mkdir(parents=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(part / "model.safetensors"))
    torch.save({"optimizer": optimizer.state_dict(), "step": int(step), "rng": _rng_state(), **(extra or {})},
               part / "train_state.pt")
    meta = {"format": CKPT_FORMAT, "step": int(step), **configs,
            "sha256": {f: sha256_file(part / f) for f in ("model.safetensors", "train_state.pt")}}
    (part / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True, default=str))
    if directory.exists():
        shutil.rmtree(directory)
    os.rename(part, directory)
    return directory


def read_meta(directory: str | os.PathLike) -> dict[str, Any]:
    d = Path(directory)
    mp = d / "meta.json"
    if not mp.exists():
        raise CheckpointError(f"{d}: not a checkpoint (meta.json missing)")
    try:
        meta = json.loads(mp.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{mp}: corrupt ({e})") from None
    if meta.get("format") != CKPT_FORMAT:
        raise CheckpointError(f"{mp}: format {meta.get('format')!r}, expected {CKPT_FORMAT!r}")
    return meta


def verify_files(d: Path, meta: dict[str, Any], files: tuple[str, ...]) -> None:
    for f in files:
        p = d / f
        if not p.exists():
            raise CheckpointError(f"{p}: missing")
        want = meta.get("sha256", {}).get(f)
        if want is None or sha256_file(p) != want:
            raise CheckpointError(f"{p}: corrupt (sha256 does not match meta.json)")


def config_diff(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    keys = sorted(set(a) | set(b))
    return [f"{k}: {a.get(k)!r} != {b.get(k)!r}" for k in keys if json.dumps(a.get(k), sort_keys=True) != json.dumps(b.get(k), sort_keys=True)]


def load_model_weights(model: ADTransformer, directory: str | os.PathLike) -> dict[str, Any]:
    """Load ``model.safetensors`` of a checkpoint (or final model dir) into ``model``.

    Refuses a corrupt file and a checkpoint of another model config, naming the fields."""
    from safetensors.torch import load_file

    d = Path(directory)
    meta = read_meta(d)
    verify_files(d, meta, ("model.safetensors",))
    diff = config_diff(meta.get("model", {}), model.cfg.to_dict())
    if diff:
        raise CheckpointError(f"{d}: made for another model config ({'; '.join(diff)})")
    try:
        sd = load_file(str(d / "model.safetensors"))
    except Exception as e:  # safetensors raises its own error types
        raise CheckpointError(f"{d / 'model.safetensors'}: unreadable ({e})") from None
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
        raise CheckpointError(f"{directory}: bad model config in meta.json ({e})") from None
    model = ADTransformer(cfg)
    load_model_weights(model, directory)
    return model.to(device).eval(), meta


def latest_checkpoint(run_dir: Path) -> Path | None:
    root = run_dir / "checkpoints"
    if not root.exists():
        return None
    done = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("step_") and not p.name.endswith(".partial")
                  and (p / "meta.json").exists())
    return done[-1] if done else None


# ---------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------
@dataclass
class RunResult:
    model: ADTransformer
    step: int
    log: list[dict[str, Any]]
    run_dir: Path


def check_store_fits(store: PackedStore, cfg: ModelConfig, what: str = "training data") -> None:
    """Refuse data whose action space or observations do not fit the model."""
    if store.n_actions != cfg.n_actions:
        raise DataError(f"{what} has {store.n_actions} actions; the model predicts {cfg.n_actions}")
    lo, hi = store.manifest.get("obs_range", [None, None])
    if cfg.obs_encoder in ("table", "grid") and hi is not None and (lo < 0 or hi >= cfg.obs_n):
        raise DataError(f"{what} has observations in [{lo}, {hi}]; the model's {cfg.obs_encoder} encoder takes 0..{cfg.obs_n - 1}")


def _micro_seed(seed: int, step: int, micro: int) -> int:
    return int(np.random.SeedSequence([int(seed), 0xD80, int(step), int(micro)]).generate_state(1)[0])


def train(model_cfg: ModelConfig, cfg: TrainConfig, store: PackedStore, run_dir: str | os.PathLike, *,
          val_store: PackedStore | None = None, resume: bool = False, device: str = "cpu",
          data_info: dict[str, Any] | None = None, progress: bool = True, stop_after: int | None = None,
          dist: Dist | None = None) -> RunResult:
    """Train from scratch (or ``resume`` from ``run_dir``'s latest checkpoint) for ``cfg.steps``.

    ``stop_after`` stops abruptly after that many updates in this call (tests: a simulated kill,
    no final checkpoint)."""
    d = dist or Dist()
    run_dir = Path(run_dir)
    check_store_fits(store, model_cfg)
    if val_store is not None:
        check_store_fits(val_store, model_cfg, "validation data")
    if cfg.micro_batches % d.world:
        raise ValueError(f"micro_batches {cfg.micro_batches} is not a multiple of the {d.world} processes")
    configs = {"model": model_cfg.to_dict(), "train": dataclasses.asdict(cfg), "data": data_info or {}}

    torch.manual_seed(cfg.seed)
    model = ADTransformer(model_cfg).to(device)
    opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
                            fused=False, foreach=False)
    start = 0
    logacc = None
    if resume:
        ck = latest_checkpoint(run_dir)
        if ck is None:
            raise CheckpointError(f"{run_dir}: nothing to resume (no complete checkpoint under checkpoints/)")
        meta = read_meta(ck)
        verify_files(ck, meta, ("model.safetensors", "train_state.pt"))
        for part in ("model", "data"):
            diff = config_diff(meta.get(part, {}), configs[part])
            if diff:
                raise CheckpointError(f"{ck}: made with another {part} config ({'; '.join(diff)})")
        tdiff = [x for x in config_diff(meta.get("train", {}), configs["train"]) if x.split(":")[0] not in _RESUMABLE_DIFFS]
        if tdiff:
            raise CheckpointError(f"{ck}: made with another train config ({'; '.join(tdiff)})")
        load_model_weights(model, ck)
        try:
            st = torch.load(ck / "train_state.pt", weights_only=True, map_location=device)
        except Exception as e:
            raise CheckpointError(f"{ck / 'train_state.pt'}: unreadable ({e})") from None
        opt.load_state_dict(st["optimizer"])
        start = int(st["step"])
        _set_rng_state(st["rng"])
        logacc = st.get("log_accumulators", None)

    ddp_model: torch.nn.Module = model
    if d.world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ddp_model = DDP(model, device_ids=[d.local_rank] if device.startswith("cuda") else None, broadcast_buffers=False)

    sampler = WindowSampler(store, context=model_cfg.context, subsample=cfg.subsample, seed=cfg.seed,
                            frame_stack=model_cfg.frame_stack if model_cfg.obs_encoder == "pixels" else 1)
    val_sampler = None
    if val_store is not None:
        val_sampler = WindowSampler(val_store, context=model_cfg.context, subsample=[1], seed=cfg.seed + 1,
                                    frame_stack=sampler.frame_stack)

    log_path = run_dir / "log.csv"
    log_rows: list[dict[str, Any]] = []
    fields = ["step", "lr", "loss", "kl_bits", "val_kl_bits", "grad_norm", "tokens", "tokens_per_s", "elapsed_s"]
    writer = tb = None
    if d.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        old: list[dict[str, str]] = []
        if resume and log_path.exists():
            with open(log_path) as f:
                old = [r for r in csv.DictReader(f) if int(r["step"]) <= start]
        lf = open(log_path, "w", newline="")
        writer = csv.DictWriter(lf, fieldnames=fields)
        writer.writeheader()
        for r in old:
            writer.writerow(r)
        lf.flush()
        try:
            from torch.utils.tensorboard import SummaryWriter  # optional

            tb = SummaryWriter(str(run_dir / "tb"), purge_step=start)
        except Exception:
            tb = None

    per_rank = cfg.micro_batches // d.world
    micro_rows = cfg.batch_size // cfg.micro_batches
    model.train()
    bar = None
    if progress and d.main:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, initial=start, desc="train", unit="upd", dynamic_ncols=True, mininterval=1.0)
    t0 = time.perf_counter()
    # Running sums of the current log row (checkpointed, so a resumed log equals an unkilled one).
    tokens_seen, acc_loss, acc_kl, acc_n = (0, 0.0, 0.0, 0) if logacc is None else (
        int(logacc["tokens"]), float(logacc["loss"]), float(logacc["kl"]), int(logacc["n"]))
    tokens_here = 0
    done_here = 0
    step = start
    try:
        while step < cfg.steps:
            lr = lr_at(step, cfg)
            for g in opt.param_groups:
                g["lr"] = lr
            _, gmask = sampler.indices(step, cfg.batch_size)
            n_tok = float(gmask.sum())
            opt.zero_grad(set_to_none=True)
            loss_sum = kl_sum = 0.0
            for m in range(per_rank):
                micro = d.rank * per_rank + m
                rows = slice(micro * micro_rows, (micro + 1) * micro_rows)
                batch = sampler.batch(step, cfg.batch_size, rows).to(device)
                torch.manual_seed(_micro_seed(cfg.seed, step, micro))
                ctx = ddp_model.no_sync() if (d.world > 1 and m < per_rank - 1) else _null()
                with ctx:
                    logits = ddp_model(batch.tokens)
                    tl, kl = token_loss(logits, batch, cfg.loss)
                    msk = batch.mask.float()
                    loss = (tl * msk).sum() / n_tok
                    # DDP averages gradients over processes; scale so they are summed instead.
                    (loss * d.world).backward()
                loss_sum += float(loss.detach())
                kl_sum += float((kl * msk).sum()) / n_tok
            if d.world > 1:
                import torch.distributed as dist

                t = torch.tensor([loss_sum, kl_sum], dtype=torch.float64)
                dist.all_reduce(t)
                loss_sum, kl_sum = float(t[0]), float(t[1])
            gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip if cfg.grad_clip > 0 else float("inf"))
            opt.step()
            step += 1
            done_here += 1
            tokens_seen += int(n_tok)
            tokens_here += int(n_tok)
            acc_loss += loss_sum
            acc_kl += kl_sum
            acc_n += 1
            val = None
            if val_sampler is not None and cfg.eval_every and (step % cfg.eval_every == 0 or step == cfg.steps):
                val = evaluate_loss(model, val_sampler, cfg, device)
            if d.main and (step % cfg.log_every == 0 or step == cfg.steps or val is not None):
                el = time.perf_counter() - t0
                row = {"step": step, "lr": lr, "loss": acc_loss / acc_n, "kl_bits": acc_kl / acc_n / math.log(2),
                       "val_kl_bits": "" if val is None else val, "grad_norm": float(gnorm),
                       "tokens": tokens_seen, "tokens_per_s": tokens_here / max(el, 1e-9), "elapsed_s": el}
                log_rows.append(row)
                writer.writerow(row)
                lf.flush()
                if tb is not None:
                    tb.add_scalar("losses/loss", row["loss"], step)
                    tb.add_scalar("losses/kl_bits", row["kl_bits"], step)
                    if val is not None:
                        tb.add_scalar("losses/val_kl_bits", val, step)
                    tb.add_scalar("charts/learning_rate", lr, step)
                    tb.add_scalar("charts/tokens_per_s", row["tokens_per_s"], step)
                acc_loss = acc_kl = 0.0
                acc_n = 0
                if bar is not None:
                    bar.set_postfix(loss=f"{row['loss']:.4f}", val="" if val is None else f"{val:.4f}")
            if bar is not None:
                bar.update(1)
            if stop_after is not None and done_here >= stop_after:
                return RunResult(model, step, log_rows, run_dir)  # simulated kill: no final checkpoint
            if (step % cfg.checkpoint_every == 0 or step == cfg.steps):
                if d.main:
                    ck = save_checkpoint(run_dir / "checkpoints" / f"step_{step:08d}", model=model, optimizer=opt,
                                         step=step, configs=configs,
                                         extra={"log_accumulators": {"tokens": tokens_seen, "loss": acc_loss,
                                                                     "kl": acc_kl, "n": acc_n}})
                    _prune(run_dir / "checkpoints", cfg.keep_checkpoints, keep=ck)
                _barrier(d)
    finally:
        if bar is not None:
            bar.close()
        if writer is not None:
            lf.close()
        if tb is not None:
            tb.close()
    if d.main:
        export_model(model, run_dir / "model", configs)
    _barrier(d)
    return RunResult(model, step, log_rows, run_dir)


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *a: Any) -> None:
        return None


@torch.no_grad()
def evaluate_loss(model: ADTransformer, sampler: WindowSampler, cfg: TrainConfig, device: str) -> float:
    """Mean per-token KL to teacher_probs (bits) on fixed held-out windows (no dropout).

    Uses its own generators, so it does not disturb the training RNG streams."""
    was = model.training
    model.eval()
    tot = n = 0.0
    for i in range(cfg.eval_batches):
        b = sampler.batch(i, cfg.batch_size).to(device)
        _, kl = token_loss(model(b.tokens), b, "kl")
        tot += float((kl * b.mask).sum())
        n += float(b.mask.sum())
    model.train(was)
    return tot / max(n, 1.0) / math.log(2)


def _prune(root: Path, keep_n: int, keep: Path) -> None:
    done = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("step_") and not p.name.endswith(".partial"))
    for p in done[: max(0, len(done) - max(1, keep_n))]:
        if p != keep:
            shutil.rmtree(p, ignore_errors=True)


def export_model(model: ADTransformer, directory: Path, configs: dict[str, Any]) -> Path:
    """The final model for acting: ``model.safetensors`` + ``meta.json`` (no optimizer)."""
    from safetensors.torch import save_file

    part = directory.with_name(directory.name + ".partial")
    if part.exists():
        shutil.rmtree(part)
    part.mkdir(parents=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(part / "model.safetensors"))
    meta = {"format": CKPT_FORMAT, "step": None, **configs, "sha256": {"model.safetensors": sha256_file(part / "model.safetensors")}}
    (part / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True, default=str))
    if directory.exists():
        shutil.rmtree(directory)
    os.rename(part, directory)
    return directory


__all__ = ["TrainConfig", "train", "lr_at", "token_loss", "save_checkpoint", "load_model_weights", "model_from_checkpoint",
           "latest_checkpoint", "CheckpointError", "Dist", "init_distributed", "check_store_fits", "export_model"]
