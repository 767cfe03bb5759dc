"""In-context rollouts of a frozen model on many tasks at once (batched ``closed_loop``).

``experiments.protocol.closed_loop(TransformerImitator(model), env, episodes, seed)`` runs one
task at a time. Evaluating in-context RL needs hundreds of such runs (held-out tasks x seeds x
training seeds), so ``incontext_rollouts`` runs them as one batch: one forward pass per step
for all runs, with a batched key/value cache. It reproduces ``closed_loop`` run by run: the
same env seeding, the same per-run generator drawing each action from the model's exact
probabilities with one uniform (``sample_action``), the same context schedule (a window that
slides back to an episode start, ``agent.slide_cut``). Batched and single-row matmuls round
differently (~1e-7), which can flip a draw only when a uniform lands that close to a CDF
boundary; the tests check the two agree.

Runs must share episode boundaries (fixed-length episodes: Dark Room, bandits), so that their
contexts slide together; otherwise it raises and ``closed_loop`` is the tool.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from learners.protocols import sample_action
from learners.transformer.agent import slide_cut
from learners.transformer.model import ADTransformer, KVCache, Tokens


@dataclass
class Rollouts:
    returns: np.ndarray   # [R, E] return of each in-context episode of each run
    actions: np.ndarray   # [R, T] actions taken
    rewards: np.ndarray   # [R, T]
    probs: np.ndarray | None  # [R, T, A] (when keep_probs)


@torch.no_grad()
def incontext_rollouts(model: ADTransformer, env_id: str, tasks: Sequence[dict[str, Any]], seeds: Sequence[int],
                       episodes: int, *, slide: float = 0.5, temperature: float = 1.0, keep_probs: bool = False,
                       device: str = "cpu", progress: bool = False) -> Rollouts:
    """Run ``len(tasks) x len(seeds)`` in-context runs of ``episodes`` episodes (run r = task
    ``r // len(seeds)``, seed ``seeds[r % len(seeds)]``), each from an empty context."""
    import envs

    model = model.to(device).eval()
    cfg = model.cfg
    A = cfg.n_actions
    runs = [(t, s) for t in tasks for s in seeds]
    R = len(runs)
    if R == 0 or episodes <= 0:
        raise ValueError("need at least one task, one seed and one episode")
    if cfg.obs_encoder not in ("table", "grid"):
        raise ValueError("batched rollouts support discrete observations; use experiments.protocol.closed_loop")
    envs_, rngs, obs = [], [], np.zeros(R, np.int64)
    for i, (task, seed) in enumerate(runs):
        e = envs.make(env_id, **task)
        if e.action_space.n != A:
            raise ValueError(f"{env_id} has {e.action_space.n} actions; the model predicts {A}")
        env_ss, act_ss = np.random.SeedSequence(int(seed)).spawn(2)
        rngs.append(np.random.default_rng(act_ss))
        o, _ = e.reset(seed=int(env_ss.generate_state(1)[0]))
        obs[i] = int(o)
        envs_.append(e)
    C = cfg.context
    slide_tokens = max(1, int(round(slide * C)))
    cache = KVCache.empty(cfg, R, device)
    ctx_obs: list[np.ndarray] = []
    ctx_pa: list[np.ndarray] = []
    ctx_pr: list[np.ndarray] = []
    ctx_first: list[bool] = []
    prev_a = np.full(R, A, np.int64)
    prev_r = np.zeros(R, np.float32)
    next_first = True
    returns = np.zeros((R, episodes))
    acts, rews, probs_log = [], [], []
    ep = 0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=episodes, desc="in-context", unit="ep")

    def tokens(o, pa, pr, first) -> Tokens:
        return Tokens(torch.from_numpy(np.stack(o, 1)).to(device), torch.from_numpy(np.stack(pa, 1)).to(device),
                      torch.from_numpy(np.stack(pr, 1)).to(device),
                      torch.tensor([first] * R, dtype=torch.bool, device=device).reshape(R, -1))

    try:
        while ep < episodes:
            if len(ctx_pa) >= C:
                cut = slide_cut(np.asarray(ctx_first, bool), slide_tokens)
                del ctx_obs[:cut], ctx_pa[:cut], ctx_pr[:cut], ctx_first[:cut]
                if ctx_pa:
                    ctx_pa[0] = np.full(R, A, np.int64)
                    ctx_pr[0] = np.zeros(R, np.float32)
                cache.length = 0
                if ctx_pa:
                    model(tokens(ctx_obs, ctx_pa, ctx_pr, ctx_first), cache=cache)
            pa = prev_a if ctx_pa else np.full(R, A, np.int64)
            pr = prev_r if ctx_pa else np.zeros(R, np.float32)
            logits = model(tokens([obs], [pa], [pr], [next_first]), cache=cache)[:, -1]
            p = torch.softmax(logits.double() / temperature, dim=-1).cpu().numpy()
            p /= p.sum(1, keepdims=True)
            a = np.array([sample_action(p[i], rngs[i]) for i in range(R)], np.int64)
            ctx_obs.append(obs.copy())
            ctx_pa.append(pa.copy())
            ctx_pr.append(pr.copy())
            ctx_first.append(next_first)
            nobs = np.zeros(R, np.int64)
            r = np.zeros(R, np.float32)
            done = np.zeros(R, bool)
            for i, e in enumerate(envs_):
                o2, ri, term, trunc, _ = e.step(int(a[i]))
                r[i], done[i] = ri, term or trunc
                nobs[i] = int(o2)
            if done.any() and not done.all():
                raise ValueError("runs ended episodes at different steps; batched rollouts need fixed-length episodes")
            returns[:, ep] += r
            acts.append(a)
            rews.append(r)
            if keep_probs:
                probs_log.append(p)
            prev_a, prev_r = a, r
            next_first = bool(done[0])
            if next_first:
                for i, e in enumerate(envs_):
                    o, _ = e.reset()
                    nobs[i] = int(o)
                ep += 1
                if bar is not None:
                    bar.update(1)
            obs = nobs
    finally:
        for e in envs_:
            e.close()
        if bar is not None:
            bar.close()
    return Rollouts(returns=returns, actions=np.stack(acts, 1), rewards=np.stack(rews, 1),
                    probs=np.stack(probs_log, 1) if keep_probs else None)


__all__ = ["incontext_rollouts", "Rollouts"]
