"""AD transformer speed: training tokens/s and FLOP/s against this machine's fp32 matmul rate; in-context acting steps/s with and without the KV cache at a 1000-step context.

Measured in one run, per torch thread count in --threads (default "1,2"):

* ``matmul_gflops``: fp32 square matmuls (n = --matmul-n) — the machine's reference rate;
* ``train_tokens_per_s``: full training updates (window sampling from a memory-mapped packed
  store, forward, backward, clipping, AdamW) of the Dark Room ``default`` model at its context
  and batch; ``train_gflops`` = tokens/s x the model's FLOPs per token (6 N + attention,
  ``ADTransformer.flops_per_token``); ``train_fraction_of_matmul`` = their ratio;
* ``act_steps_per_s_kv`` / ``act_steps_per_s_no_cache``: ``TransformerImitator`` steps
  (action_probs + observe) with a context already holding --act-context steps, with the cache
  and recomputing the whole context each step; ``kv_speedup`` = their ratio.

The machine is shared: the load average before and after is reported with the figures.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from typing import Any

import numpy as np

from experiments.cli import UsageError
from learners.history import LearningHistory
from learners.protocols import Transition


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", default="1,2", help="comma-separated torch thread counts to measure (default: 1,2)")
    p.add_argument("--seconds", type=float, default=8.0, help="seconds per timed section (default: 8)")
    p.add_argument("--matmul-n", type=int, default=512, help="matmul size of the reference (default: 512)")
    p.add_argument("--act-context", type=int, default=1000, help="context length for acting (default: 1000)")
    p.add_argument("--seed", type=int, default=0)


def timed(fn, seconds: float, min_iters: int = 3) -> tuple[float, int]:
    """(wall seconds, calls) of calling ``fn`` for at least ``seconds`` and ``min_iters`` calls, after one warm-up."""
    fn()  # warm-up
    n, t0 = 0, time.perf_counter()
    while n < min_iters or time.perf_counter() - t0 < seconds:
        fn()
        n += 1
    return time.perf_counter() - t0, n


def _synthetic_store(root: str, A: int, S: int, ep_len: int, episodes: int, histories: int, seed: int):
    from learners.transformer.data import PackedStore, pack_histories  # imports torch: see run

    rng = np.random.default_rng(seed)
    hs = []
    T = ep_len * episodes
    for _ in range(histories):
        p = rng.dirichlet(np.ones(A), size=T)
        a = np.array([rng.choice(A, p=row) for row in p[:64]] + list(p[64:].argmax(1)))
        trunc = (np.arange(T) % ep_len) == ep_len - 1
        hs.append(LearningHistory.from_arrays(obs=rng.integers(0, S, T), action=a, reward=(rng.random(T) < 0.1).astype(float),
                                              terminated=np.zeros(T, bool), truncated=trunc, teacher_probs=p))
    return PackedStore.open(pack_histories(hs, os.path.join(root, "packed")))


def kl_update(model: Any, opt: Any, sampler: Any, batch: int):
    """One training update of the AD loss (KL to the teacher's probabilities) per call, on the
    sampler's next batch: what the trainer does per update, without its bookkeeping."""
    import torch  # loaded by the caller already (see run)

    from learners.transformer.train import token_loss

    step = [0]

    def update() -> None:
        bt = sampler.batch(step[0], batch)
        step[0] += 1
        tl, _ = token_loss(model(bt.tokens), bt, "kl")
        loss = (tl * bt.mask).sum() / bt.mask.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    return update


def run(args: argparse.Namespace) -> dict[str, Any]:
    # torch and the transformer package (which imports it) on use: torch's import takes 2.3 s
    # here, 9x all the rest of --help.
    import torch

    from learners.transformer.agent import TransformerImitator
    from learners.transformer.data import WindowSampler
    from learners.transformer.model import ADTransformer, ModelConfig, param_groups
    from learners.transformer.presets import preset

    threads = [int(t) for t in str(args.threads).split(",") if t.strip()]
    if not threads or min(threads) < 1:
        raise UsageError("--threads must list positive integers")
    P = preset("darkroom", "default")
    mcfg = ModelConfig(**{**P["model"], "n_actions": 5, "obs_n": 81, "grid_shape": (9, 9)})
    batch = int(P["train"]["batch_size"])
    out: dict[str, Any] = {"load_avg_before": list(os.getloadavg()), "model": mcfg.to_dict(), "batch_windows": batch}
    with tempfile.TemporaryDirectory() as tmp:
        store = _synthetic_store(tmp, 5, 81, 20, 60, 8, args.seed)
        sampler = WindowSampler(store, context=mcfg.context, subsample=[1, 2], seed=args.seed)
        for th in threads:
            torch.set_num_threads(th)
            n = args.matmul_n
            a, b = torch.randn(n, n), torch.randn(n, n)
            dt, it = timed(lambda: a @ b, args.seconds / 4)
            mm = 2 * n**3 * it / dt
            torch.manual_seed(args.seed)
            model = ADTransformer(mcfg)
            opt = torch.optim.AdamW(param_groups(model, 0.1), lr=1e-3)
            update = kl_update(model, opt, sampler, batch)

            dt, it = timed(update, args.seconds)
            tok_s = it * batch * mcfg.context / dt
            flops = model.flops_per_token(mcfg.context) * tok_s
            # Acting at a long context.
            C = args.act_context
            acfg = ModelConfig(**{**mcfg.to_dict(), "context": C + 64, "dropout": 0.0, "attn_dropout": 0.0, "embd_dropout": 0.0})
            amodel = ADTransformer(acfg).eval()
            res = {}
            for use_cache in (True, False):
                ag = TransformerImitator(amodel, seed=0, use_cache=use_cache)
                hist = _history(C, 20, args.seed)
                ag.observe_history(hist)  # a context of C steps, in one forward pass
                rng = np.random.default_rng(args.seed)
                # Steps at a context of C..C+59 tokens; re-priming the context (one forward over C
                # tokens, every 60 steps) is kept out of the clock: in use the context slides
                # once every slide * context steps, not every 60.
                busy, n, k, t_end = 0.0, 0, 0, time.perf_counter() + args.seconds / 2
                while n < 5 or time.perf_counter() < t_end:
                    if ag.context_length >= C + 60:
                        ag.reset()
                        ag.observe_history(hist)
                    o = int(rng.integers(0, 81))
                    t0 = time.perf_counter()
                    a_ = ag.act(o)
                    ag.observe(Transition(o, a_, 0.0, o, False, k % 20 == 19), intervention=True)
                    busy += time.perf_counter() - t0
                    n += 1
                    k += 1
                res[use_cache] = n / busy
            out[f"threads_{th}"] = {
                "matmul_gflops": mm / 1e9,
                "train_tokens_per_s": tok_s,
                "train_gflops": flops / 1e9,
                "train_fraction_of_matmul": flops / mm,
                "flops_per_token": model.flops_per_token(mcfg.context),
                "act_context": C,
                "act_steps_per_s_kv": res[True],
                "act_steps_per_s_no_cache": res[False],
                "kv_speedup": res[True] / res[False],
            }
    out["load_avg_after"] = list(os.getloadavg())
    best = max(threads, key=lambda t: out[f"threads_{t}"]["train_tokens_per_s"])
    out["best_threads_for_training"] = best
    out.update({k: v for k, v in out[f"threads_{best}"].items()})
    return out


def _history(T: int, ep_len: int, seed: int):
    rng = np.random.default_rng(seed)
    return LearningHistory.from_arrays(obs=rng.integers(0, 81, T), action=rng.integers(0, 5, T), reward=np.zeros(T),
                                       terminated=np.zeros(T, bool), truncated=(np.arange(T) % ep_len) == ep_len - 1,
                                       teacher_probs=np.full((T, 5), 0.2))
