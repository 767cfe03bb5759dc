"""The evaluators every imitator goes through, and the control imitators.

* ``teacher_forced(imitator, history)`` — Q1 and tracking: at every step the imitator's
  ``action_probs`` *before* it is shown the teacher's action, scored against ``teacher_probs``:
  log-loss of the taken action (bits), KL(teacher || imitator) (bits), argmax agreement.
* ``closed_loop(agent, env, episodes, seed)`` — Q2/Q3: the agent acts on its own; every action it
  takes is passed back with ``intervention=True``. Actions are drawn from the agent's exact
  ``action_probs`` with the protocol's own seeded generator, so a run is reproducible from
  ``seed`` whatever the agent.
* Controls: ``UniformRandom``; ``FrozenTeacher`` (a teacher fixed at a weight snapshot: acts,
  never learns), ``frozen_from_history(history, step)``.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from learners.history import LearningHistory
from learners.interop.unknown_probs import teacher_probs_known
from learners.protocols import SampledAgent, Transition, sample_action

LOG2E = 1.0 / math.log(2.0)


# ---------------------------------------------------------------------------------------------
# Teacher-forced tracking
# ---------------------------------------------------------------------------------------------
@dataclass
class TeacherForcedResult:
    """Per-step scores of an imitator along a teacher's history."""

    probs: np.ndarray          # [T, A] imitator's predictive distribution before each teacher action
    log_loss_bits: np.ndarray  # [T]   -log2 p_imitator(action[t])
    kl_bits: np.ndarray        # [T]   KL(teacher_probs[t] || probs[t]) in bits
    agree: np.ndarray          # [T]   1.0 where the imitator's argmax is an argmax of the teacher
    episode: np.ndarray        # [T]   episode of each step (for per-episode summaries)
    teacher_probs_known: bool = True  # False: KL and agreement are NaN (only actions were logged)

    def cumulative_log_loss_bits(self) -> np.ndarray:
        return np.cumsum(self.log_loss_bits)

    def by_episode(self, values: np.ndarray | None = None) -> np.ndarray:
        """Mean of ``values`` (default: KL) over each episode."""
        v = self.kl_bits if values is None else values
        n = np.bincount(self.episode)
        return np.bincount(self.episode, weights=v, minlength=len(n)) / np.maximum(n, 1)

    def summary(self, last: int | None = None) -> dict[str, float]:
        sl = slice(-last, None) if last else slice(None)
        out: dict[str, Any] = {"steps": int(len(self.kl_bits[sl])),
                               "mean_log_loss_bits": float(np.mean(self.log_loss_bits[sl]))}
        if self.teacher_probs_known:
            out.update(mean_kl_bits=float(np.mean(self.kl_bits[sl])), argmax_agreement=float(np.mean(self.agree[sl])))
        else:
            out["teacher_probs"] = "unknown: only the actions were logged, so KL and agreement are not measured"
        return out


def score_predictions(probs: np.ndarray, history: LearningHistory) -> TeacherForcedResult:
    """Score predicted distributions ``probs[t]`` of the teacher's action against the history.

    A history whose ``teacher_probs`` are a placeholder (imported from a dataset that logged only
    the actions) is scored on the actions alone: log-loss is measured, KL and agreement with the
    teacher's distribution are NaN (never computed against the placeholder), and ``summary()``
    says the distribution is unknown."""
    known = teacher_probs_known(history)
    probs = np.asarray(probs, dtype=np.float64)
    tp = np.asarray(history.teacher_probs, dtype=np.float64)
    if probs.shape != tp.shape:
        raise ValueError(f"predictions of shape {probs.shape} for a history with teacher_probs {tp.shape}")
    act = np.asarray(history.action)
    T = len(act)
    with np.errstate(divide="ignore", invalid="ignore"):
        taken = probs[np.arange(T), act]
        log_loss = -np.log2(taken)
        ratio = np.where(tp > 0, tp * (np.log(tp) - np.log(probs)), 0.0)
        kl = np.sum(ratio, axis=1) * LOG2E
    kl = np.maximum(kl, 0.0)  # rounding can give -1e-17
    tmax = tp.max(axis=1, keepdims=True)
    pick = probs.argmax(axis=1)
    agree = (tp[np.arange(T), pick] >= tmax[:, 0] * (1 - 1e-12)).astype(np.float64)
    if not known:
        kl, agree = np.full(T, np.nan), np.full(T, np.nan)
    return TeacherForcedResult(probs=probs, log_loss_bits=log_loss, kl_bits=kl, agree=agree,
                               episode=np.asarray(history.episode), teacher_probs_known=known)


def teacher_forced(imitator: Any, history: LearningHistory, *, progress: bool = False, use_fast_path: bool = True) -> TeacherForcedResult:
    """Show ``imitator`` the teacher's history step by step and score its predictions.

    At step t the imitator gives ``action_probs(obs[t])``, then observes the teacher's step with
    ``intervention=False``. An imitator's ``predict_history(history)`` is used instead when it
    exists and ``use_fast_path`` (the two must agree; tests check it per imitator)."""
    if history.n_actions != getattr(imitator, "n_actions", history.n_actions):
        raise ValueError(f"imitator has {imitator.n_actions} actions, the history {history.n_actions}")
    if use_fast_path and hasattr(imitator, "predict_history"):
        return score_predictions(imitator.predict_history(history), history)
    T = len(history)
    out = np.empty((T, history.n_actions))
    obs, act, rew = history.obs, history.action, history.reward
    term, trunc = history.terminated, history.truncated
    it = range(T)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="teacher-forced", unit="step", unit_scale=True, mininterval=0.5)
    for t in it:
        o = obs[t]
        out[t] = imitator.action_probs(o)
        imitator.observe(Transition(o, int(act[t]), float(rew[t]), history.next_obs(t), bool(term[t]), bool(trunc[t])),
                         intervention=False)
    return score_predictions(out, history)


# ---------------------------------------------------------------------------------------------
# Closed loop
# ---------------------------------------------------------------------------------------------
@dataclass
class ClosedLoopResult:
    returns: np.ndarray   # [E] return of each episode
    lengths: np.ndarray   # [E] steps of each episode
    history: LearningHistory  # what the agent did (its own probabilities as teacher_probs)


def closed_loop(agent: Any, env: str | gym.Env, episodes: int, seed: int, *, env_kwargs: dict[str, Any] | None = None,
                progress: bool = False, obs_transform: Any = None) -> ClosedLoopResult:
    """Let ``agent`` act alone for ``episodes`` episodes; its own actions are interventions.

    ``seed`` seeds the env and the generator that draws the agent's actions from its
    ``action_probs`` (independent streams), so the same agent state + seed gives the same run."""
    import envs

    if episodes <= 0:
        raise ValueError(f"episodes must be positive, got {episodes}")
    own = isinstance(env, str)
    e = envs.make(env, **(env_kwargs or {})) if own else env
    if e.action_space.n != agent.n_actions:
        raise ValueError(f"agent has {agent.n_actions} actions, the env {e.action_space.n}")
    env_ss, act_ss = np.random.SeedSequence(int(seed)).spawn(2)
    rng = np.random.default_rng(act_ss)
    tf = obs_transform or (lambda o: o)
    rows: dict[str, list[Any]] = {k: [] for k in ("obs", "action", "reward", "terminated", "truncated", "episode", "teacher_probs")}
    final: dict[int, Any] = {}
    returns, lengths = [], []
    obs, _ = e.reset(seed=int(env_ss.generate_state(1)[0]))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=episodes, desc="closed-loop", unit="ep")
    try:
        for ep in range(episodes):
            ret, n = 0.0, 0
            while True:
                p = np.asarray(agent.action_probs(obs), dtype=np.float64)
                a = sample_action(p, rng)
                nobs, r, term, trunc, _ = e.step(a)
                agent.observe(Transition(obs, a, float(r), nobs, bool(term), bool(trunc)), intervention=True)
                for k, v in zip(rows, (tf(obs), a, float(r), bool(term), bool(trunc), ep, p)):
                    rows[k].append(v)
                ret += float(r)
                n += 1
                if term or trunc:
                    final[len(rows["action"]) - 1] = tf(nobs)
                    obs, _ = e.reset()
                    break
                obs = nobs
            returns.append(ret)
            lengths.append(n)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        if own:
            e.close()
    hist = LearningHistory.from_arrays(final_obs=final, metadata={"closed_loop": True, "seed": int(seed)}, **rows)
    return ClosedLoopResult(returns=np.asarray(returns), lengths=np.asarray(lengths), history=hist)


# ---------------------------------------------------------------------------------------------
# Controls
# ---------------------------------------------------------------------------------------------
class UniformRandom(SampledAgent):
    """Control imitator: every action equally likely, learns nothing."""

    def __init__(self, n_actions: int, seed: int | None = 0):
        self.n_actions = int(n_actions)
        self.rng = np.random.default_rng(seed)
        self._p = np.full(self.n_actions, 1.0 / self.n_actions)

    def action_probs(self, obs: Any) -> np.ndarray:
        return self._p.copy()

    def observe(self, transition: Transition, *, intervention: bool = True) -> None:
        pass

    def predict_history(self, history: LearningHistory) -> np.ndarray:
        return np.full((len(history), self.n_actions), 1.0 / self.n_actions)


class FrozenTeacher(SampledAgent):
    """Control imitator: the teacher fixed as it is (or at ``weights``): it acts, never learns."""

    def __init__(self, teacher: Any, weights: dict[str, np.ndarray] | None = None, seed: int | None = 0):
        self.teacher = copy.deepcopy(teacher)
        if weights is not None:
            self.teacher.load_weights(weights)
        self.n_actions = int(self.teacher.n_actions)
        self.rng = np.random.default_rng(seed)

    def action_probs(self, obs: Any) -> np.ndarray:
        return self.teacher.action_probs(obs)

    def observe(self, transition: Transition, *, intervention: bool = True) -> None:
        pass  # frozen: the control that never improves


def teacher_from_history(history: LearningHistory, step: int | None = None, seed: int | None = 0) -> Any:
    """Rebuild the teacher that recorded ``history`` (from its metadata) with the weights it had
    before acting at ``step`` (default: the last snapshot)."""
    import envs
    from learners.teachers import make_teacher

    meta = history.metadata
    cfg = dict(meta.get("teacher", {}))
    name = cfg.pop("teacher", None)
    cfg.pop("seed", None)
    if name is None:
        raise ValueError("history metadata names no teacher")
    seg = meta.get("segments", [{"env_id": meta.get("env_id"), "env_kwargs": meta.get("env_kwargs", {})}])[0]
    env = envs.make(seg["env_id"], **seg.get("env_kwargs", {}))
    try:
        teacher = make_teacher(name, env.observation_space, env.action_space, seed=seed, **cfg)
    finally:
        env.close()
    steps = history.snapshot_steps
    if not steps:
        raise ValueError("history has no weight snapshots")
    if step is None:
        step = steps[-1]
    teacher.load_weights(history.weights_at(step))
    return teacher


def frozen_from_history(history: LearningHistory, step: int | None = None, seed: int | None = 0) -> FrozenTeacher:
    """The control "the teacher frozen at its snapshot at ``step``"."""
    return FrozenTeacher(teacher_from_history(history, step, seed=seed), seed=seed)
