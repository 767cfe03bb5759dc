"""Atari AD speed and memory: training tokens/s and FLOP/s against this machine's fp32 matmul rate (frozen-encoder and end-to-end CNN models), acting steps/s on ALE Breakout beside the DQN teacher acting alone, and peak memory of training on a 10^6-step memory-mapped history.

Measured in one run, with --threads torch threads:

* ``matmul_gflops``: fp32 square matmuls (n = --matmul-n), the reference rate;
* ``frozen_*``: full training updates (window sampling from memory-mapped cached embeddings,
  forward, backward, clipping, AdamW) of the atari --preset model (frozen encoder: a ``vector``
  model over embeddings) at its context and batch; FLOPs per token = 6 N + attention
  (``ADTransformer.flops_per_token``);
* ``cnn_*``: the same with the end-to-end Nature CNN over 4-frame stacks rebuilt from single
  memory-mapped frames (batch --cnn-batch windows); FLOPs per token add 3x the CNN's forward
  multiply-adds x 2;
* ``act_*``: steps/s of env + encoder + transformer with the KV cache (context prefilled to the
  model's window, sliding as in use) on ``ALE/Breakout-v5``, beside the DQN teacher (Nature CNN
  forward + env) acting alone on the same env;
* ``peak_rss_gb_*``: peak resident memory (VmHWM) of a separate process that opens a
  --history-steps history of 84x84 frames (a sparse memory-mapped file: its size on disk is what
  a recording would have, its pages are never all read) and trains the CNN model on it for a few
  updates; ``history_gb`` is the frames' size, which never has to fit in memory.

The machine is shared: the load average before and after is reported with the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from experiments.benchmarks.transformer import kl_update, timed
from experiments.cli import UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", choices=("smoke", "default", "paper"), default="default", help="atari preset whose model is timed (default: default)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    p.add_argument("--seconds", type=float, default=6.0, help="seconds per timed section (default: 6)")
    p.add_argument("--matmul-n", type=int, default=512, help="matmul size of the reference (default: 512)")
    p.add_argument("--cnn-batch", type=int, default=2, help="windows per update of the end-to-end CNN model (default: 2)")
    p.add_argument("--history-steps", type=int, default=1_000_000, help="steps of the memory-mapped history (default: 10^6)")
    p.add_argument("--act-steps", type=int, default=300, help="minimum acting steps per agent (default: 300)")
    p.add_argument("--seed", type=int, default=0)


def _cnn_forward_macs(model: Any) -> float:
    """Multiply-adds of one forward pass of the model's pixel encoder over one stack."""
    import torch

    macs = [0.0]

    def hook(m, inp, out):
        if isinstance(m, torch.nn.Conv2d):
            macs[0] += out.numel() * m.in_channels * m.kernel_size[0] * m.kernel_size[1] / m.groups
        elif isinstance(m, torch.nn.Linear):
            macs[0] += m.in_features * m.out_features

    enc = model.obs_enc
    hs = [m.register_forward_hook(hook) for m in enc.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        enc(torch.zeros(1, *enc.shape, dtype=torch.uint8))
    for h in hs:
        h.remove()
    return macs[0]


def synthetic_history(root: Path, steps: int, ep_len: int = 1000, *, frames: bool = True) -> Any:
    """A LearningHistory over sparse memory-mapped columns (nothing is written but headers)."""
    from learners.history import LearningHistory

    root.mkdir(parents=True, exist_ok=True)

    def mm(name: str, dtype: Any, shape: tuple[int, ...]) -> np.ndarray:
        return np.lib.format.open_memmap(root / f"{name}.npy", "w+", dtype, shape)

    obs = mm("obs", np.uint8, (steps, 84, 84)) if frames else np.zeros((steps, 84, 84), np.uint8)[:0]
    trunc = mm("truncated", np.bool_, (steps,))
    trunc[ep_len - 1 :: ep_len] = True
    ep = mm("episode", np.int64, (steps,))
    ep[:] = np.arange(steps) // ep_len
    probs = mm("teacher_probs", np.float32, (steps, 18))
    return LearningHistory(obs=obs, action=mm("action", np.int64, (steps,)), reward=mm("reward", np.float64, (steps,)),
                           terminated=mm("terminated", np.bool_, (steps,)), truncated=trunc, episode=ep, teacher_probs=probs,
                           segment=np.zeros(steps, np.int64), teacher_values=None, final_obs_step=np.zeros(0, np.int64),
                           final_obs=np.zeros((0, 84, 84), np.uint8), metadata={"env_id": "ALE/Breakout-v5"}, path=None)


def _train_updates(mcfg: Any, store: Any, batch: int, seconds: float, seed: int, frame_stack: int) -> tuple[float, Any]:
    import torch

    from learners.transformer.data import WindowSampler
    from learners.transformer.model import ADTransformer, param_groups

    torch.manual_seed(seed)
    model = ADTransformer(mcfg)
    opt = torch.optim.AdamW(param_groups(model, 0.1), lr=1e-4)
    sampler = WindowSampler(store, context=mcfg.context, subsample=[1, 2], seed=seed, frame_stack=frame_stack)
    update = kl_update(model, opt, sampler, batch)

    dt, it = timed(update, seconds, min_iters=2)
    return it * batch * mcfg.context / dt, model


def peak_memory_child(steps: int, context: int, batch: int, updates: int, root: str) -> dict[str, Any]:
    """Run in a fresh process: open a ``steps``-step memory-mapped history, train the CNN model."""
    import torch

    from learners.transformer.atari import AtariHistory, model_fields, view_store
    from learners.transformer.model import ModelConfig

    torch.set_num_threads(1)
    h = synthetic_history(Path(root), steps)
    store = view_store([AtariHistory.open(h)])
    mcfg = ModelConfig(**{"context": context, "n_layer": 4, "n_head": 4, "d_model": 128, "dropout": 0.0,
                          "attn_dropout": 0.0, "embd_dropout": 0.0, **model_fields("nature_cnn", 64)})
    _train_updates(mcfg, store, batch, 0.0, 0, 4)
    with open("/proc/self/status") as f:
        hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    return {"peak_rss_gb": hwm / 2**20, "history_gb": steps * 84 * 84 / 2**30}


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.threads < 1 or args.seconds <= 0 or args.cnn_batch < 1 or args.history_steps < 2000 or args.act_steps < 1:
        raise UsageError("--threads, --cnn-batch, --act-steps must be >= 1, --seconds > 0, --history-steps >= 2000")
    # torch and the transformer package on use: torch's import takes ~2 s, most of --help's time.
    import torch

    import envs
    from experiments.atari_eval import act_for_steps, fresh_dqn
    from learners.transformer.atari import AtariHistory, AtariImitator, AtariInfo, model_fields, view_store
    from learners.transformer.frame_encoder import EncoderConfig, FrameAutoencoder, FrozenEncoder
    from learners.transformer.model import ADTransformer, ModelConfig
    from learners.transformer.presets import preset

    torch.set_num_threads(args.threads)
    P = preset("atari", args.preset)
    enc_cfg = EncoderConfig(**P["encoder"])
    base = {**P["model"], "dropout": 0.0, "embd_dropout": 0.0}
    batch = int(P["train"]["batch_size"])
    out: dict[str, Any] = {"load_avg_before": list(os.getloadavg()), "preset": args.preset, "threads": args.threads,
                           "model": base, "batch_windows": batch}
    n = args.matmul_n
    a, b = torch.randn(n, n), torch.randn(n, n)
    dt, it = timed(lambda: a @ b, args.seconds / 3)
    mm = 2 * n**3 * it / dt
    out["matmul_gflops"] = mm / 1e9
    with tempfile.TemporaryDirectory() as tmp:
        # Frozen encoder: the transformer over cached embeddings (a memory-mapped float16 file).
        T = 50_000
        h = synthetic_history(Path(tmp) / "h", T, ep_len=250, frames=False)
        emb = np.lib.format.open_memmap(Path(tmp) / "emb.npy", "w+", np.float16, (T, enc_cfg.emb_dim))
        emb[:] = np.random.default_rng(args.seed).standard_normal((T, enc_cfg.emb_dim)).astype(np.float16)
        fcfg = ModelConfig(**{**base, **model_fields("frozen_ae", enc_cfg.emb_dim)})
        ah = AtariHistory(h, ["Breakout"], h.action, h.teacher_probs, 0, T)
        tok, model = _train_updates(fcfg, view_store([ah], [emb]), batch, args.seconds, args.seed, 1)
        fpt = model.flops_per_token(fcfg.context)
        out.update(frozen_train_tokens_per_s=tok, frozen_flops_per_token=fpt, frozen_train_gflops=tok * fpt / 1e9,
                   frozen_train_fraction_of_matmul=tok * fpt / mm)
        # End to end: the Nature CNN over stacks of memory-mapped frames.
        hf = synthetic_history(Path(tmp) / "hf", 20_000, ep_len=250)
        ccfg = ModelConfig(**{**base, **model_fields("nature_cnn", 0)})
        tok, cmodel = _train_updates(ccfg, view_store([AtariHistory.open(hf)]), args.cnn_batch, args.seconds, args.seed, 4)
        cpt = cmodel.flops_per_token(ccfg.context) + 6.0 * _cnn_forward_macs(cmodel)
        out.update(cnn_batch_windows=args.cnn_batch, cnn_train_tokens_per_s=tok, cnn_flops_per_token=cpt,
                   cnn_train_gflops=tok * cpt / 1e9, cnn_train_fraction_of_matmul=tok * cpt / mm)
        # Acting on Breakout: the frozen-encoder model with a full context, and the DQN alone.
        enc = FrozenEncoder(FrameAutoencoder(4, enc_cfg.emb_dim).eval(), {"emb_dim": enc_cfg.emb_dim, "frame_stack": 4},
                            ["Breakout"], "0" * 64)
        agent = AtariImitator(ADTransformer(fcfg).eval(), AtariInfo(encoder="frozen_ae", encoder_games=["Breakout"]), enc)
        steps = max(args.act_steps, int(1.2 * fcfg.context))  # the window fills and slides once
        out["act_steps_per_s_frozen_kv"] = act_for_steps(agent, "ALE/Breakout-v5", steps, args.seed)["steps_per_s"]
        cagent = AtariImitator(ADTransformer(ccfg).eval(), AtariInfo(encoder="nature_cnn", encoder_games=["Breakout"]))
        out["act_steps_per_s_cnn_kv"] = act_for_steps(cagent, "ALE/Breakout-v5", steps, args.seed)["steps_per_s"]
        dqn = fresh_dqn("ALE/Breakout-v5", args.seed)
        out["act_steps_per_s_dqn_teacher"] = act_for_steps(dqn, "ALE/Breakout-v5", steps, args.seed)["steps_per_s"]
        e = envs.make("ALE/Breakout-v5")
        e.reset(seed=args.seed)
        t0, k = time.perf_counter(), 0
        while k < steps:
            _, _, term, trunc, _ = e.step(int(k % 4))
            k += 1
            if term or trunc:
                e.reset()
        out["env_steps_per_s"] = steps / (time.perf_counter() - t0)
        e.close()
        out["act_frozen_vs_dqn"] = out["act_steps_per_s_frozen_kv"] / out["act_steps_per_s_dqn_teacher"]
        # Peak memory of training on a long history, in a fresh process.
        code = ("import json,sys; from experiments.benchmarks.atari_transformer import peak_memory_child as f; "
                f"print(json.dumps(f({args.history_steps}, {int(base['context'])}, {args.cnn_batch}, 3, sys.argv[1])))")
        r = subprocess.run([sys.executable, "-c", code, str(Path(tmp) / "long")], capture_output=True, text=True,
                           cwd=str(Path(__file__).resolve().parents[2]))
        if r.returncode != 0:
            raise UsageError(f"peak-memory child failed: {' '.join(r.stderr.split())[-300:]}")
        child = json.loads(r.stdout.strip().splitlines()[-1])
        out.update(peak_rss_gb_train_cnn_long_history=child["peak_rss_gb"], history_steps=args.history_steps,
                   history_gb=child["history_gb"])
    out["load_avg_after"] = list(os.getloadavg())
    return out
