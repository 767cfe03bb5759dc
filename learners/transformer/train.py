"""The training loop (one loop, no model code — nanoGPT's ``train.py`` in spirit).

AdamW with warmup + cosine decay, gradient clipping, next-action loss at every token (KL to
``teacher_probs`` by default, or cross-entropy on the teacher's actions), a CSV log of scalars
(``learners.logger``; TensorBoard when installed), checkpoints that hold the whole state
(``learners.transformer.checkpoint``), and data parallelism through ``torch.distributed``
(``learners.transformer.distributed``).

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
"""
from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from learners.errors import CheckpointError
from learners.logger import MetricsLogger
from learners.transformer.checkpoint import (config_diff, export_model, latest_checkpoint, load_model_weights,
                                             load_train_state, prune_checkpoints, read_meta, save_checkpoint,
                                             set_rng_state, step_dir, verify_weights)
from learners.transformer.data import Batch, DataError, PackedStore, WindowSampler
from learners.transformer.distributed import Dist, barrier, no_sync_unless, sum_over_processes, wrap_model
from learners.transformer.model import ADTransformer, ModelConfig, param_groups

LOSSES = ("kl", "ce")


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
    if cfg.loss == "kl" and store.manifest.get("teacher_probs_known") is False:
        raise DataError(f"{store.path}: some histories hold only the actions taken (their teacher_probs are "
                        "placeholders), so a KL-to-teacher loss would invent targets; train with loss 'ce'")
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
        start, logacc = _resume(run_dir, model, opt, configs)
    ddp_model = wrap_model(model, d, device)

    sampler = WindowSampler(store, context=model_cfg.context, subsample=cfg.subsample, seed=cfg.seed,
                            frame_stack=model_cfg.frame_stack if model_cfg.obs_encoder == "pixels" else 1)
    val_sampler = None
    if val_store is not None:
        val_sampler = WindowSampler(val_store, context=model_cfg.context, subsample=[1], seed=cfg.seed + 1,
                                    frame_stack=sampler.frame_stack)

    log_rows: list[dict[str, Any]] = []
    logger = None
    if d.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        logger = MetricsLogger(run_dir / "log.csv", tensorboard_dir=run_dir / "tb", resume_step=start if resume else None)

    per_rank = cfg.micro_batches // d.world
    micro_rows = cfg.batch_size // cfg.micro_batches
    model.train()
    bar = None
    if progress and d.main:
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
                with no_sync_unless(ddp_model, d, sync=m == per_rank - 1):
                    logits = ddp_model(batch.tokens)
                    tl, kl = token_loss(logits, batch, cfg.loss)
                    msk = batch.mask.float()
                    loss = (tl * msk).sum() / n_tok
                    # DDP averages gradients over processes; scale so they are summed instead.
                    (loss * d.world).backward()
                loss_sum += float(loss.detach())
                kl_sum += float((kl * msk).sum()) / n_tok
            loss_sum, kl_sum = sum_over_processes(d, loss_sum, kl_sum)
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
                       "val_kl_bits": val, "grad_norm": float(gnorm),
                       "tokens": tokens_seen, "tokens_per_s": tokens_here / max(el, 1e-9), "elapsed_s": el}
                log_rows.append(row)
                logger.scalars(step, {LOG_NAMES[k]: v for k, v in row.items() if k != "step"})
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
                    ck = save_checkpoint(step_dir(run_dir, step), model=model, optimizer=opt, step=step, configs=configs,
                                         extra={"log_accumulators": {"tokens": tokens_seen, "loss": acc_loss,
                                                                     "kl": acc_kl, "n": acc_n}})
                    prune_checkpoints(run_dir, cfg.keep_checkpoints, keep=ck)
                barrier(d)
    finally:
        if bar is not None:
            bar.close()
        if logger is not None:
            logger.close()
    if d.main:
        export_model(model, run_dir / "model", configs)
    barrier(d)
    return RunResult(model, step, log_rows, run_dir)


#: Log names (CleanRL's ``losses/`` and ``charts/``) of the fields of a log row.
LOG_NAMES = {"lr": "charts/learning_rate", "loss": "losses/loss", "kl_bits": "losses/kl_bits",
             "val_kl_bits": "losses/val_kl_bits", "grad_norm": "losses/grad_norm", "tokens": "charts/tokens",
             "tokens_per_s": "charts/tokens_per_s", "elapsed_s": "charts/elapsed_s"}


def _resume(run_dir: Path, model: ADTransformer, opt: torch.optim.Optimizer,
            configs: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
    """Load the latest checkpoint into ``model`` and ``opt`` and restore the RNG streams; the
    step to continue from and the log accumulators. Refuses a checkpoint of another config."""
    ck = latest_checkpoint(run_dir)
    if ck is None:
        raise CheckpointError(f"{run_dir}: nothing to resume (no complete checkpoint under checkpoints/)")
    meta = read_meta(ck)
    verify_weights(ck, meta)
    for part in ("model", "data"):
        diff = config_diff(meta.get(part, {}), configs[part])
        if diff:
            raise CheckpointError(f"{ck}: made with another {part} config ({'; '.join(diff)})")
    tdiff = [x for x in config_diff(meta.get("train", {}), configs["train"]) if x.split(":")[0] not in _RESUMABLE_DIFFS]
    if tdiff:
        raise CheckpointError(f"{ck}: made with another train config ({'; '.join(tdiff)})")
    load_model_weights(model, ck)
    st = load_train_state(ck)
    opt.load_state_dict(st["optimizer"])
    set_rng_state(st["rng"])
    return int(st["step"]), st.get("log_accumulators")


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


__all__ = ["TrainConfig", "train", "lr_at", "token_loss", "evaluate_loss", "check_store_fits", "RunResult", "LOG_NAMES"]
