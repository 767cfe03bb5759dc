"""The three questions, one definition each, for every imitator and control.

Scale: every return is a fraction of the task's optimal return (``data.episode_values``), the
teacher's curve on the same scale. Each function evaluates one (imitator, seed) on every test
task of the rung and returns a ``Measured``: per-task *components* of every metric (so that the
summary can bootstrap them stratified by task) and per-episode curves.

* Q1 — now. Teacher-forced along each held-out teacher history: KL(teacher || imitator) and
  log-loss in bits per step by decile of learning time (episodes); "now" = the last decile. Then,
  conditioned on the whole history, the imitator acts on that task for ``q1_episodes``:
  ``return_now``.
* Q2 — keep improving. Conditioned on the first T episodes, the imitator acts alone until k T.
  ``continuation_ratio = (R_im(kT) - R_t(T)) / (R_t(kT) - R_t(T))`` with R the mean return over
  the last ``rung.window(T)`` episodes before T (teacher, recorded), before kT (teacher, recorded:
  the teacher's own continuation) and of the imitator's run; pooled over tasks as a ratio of
  means. ``tracking_gap`` = mean |R_im(e) - R_t(e)| over episodes T..kT-1.
* Q3 — a new task. From an empty context (transformer) / after watching a training-task teacher
  with its programs restarted (mixture), on a held-out test task for ``q3_episodes``;
  ``auc_ratio`` = mean return over the run / a fresh teacher's on the same task and stream.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

import envs
from experiments.protocol import FrozenTeacher, UniformRandom, closed_loop, score_predictions
from experiments.study.data import RungData, episode_values
from experiments.study.imitators import ModelJob, load_model, mixture_for
from experiments.study.rungs import Rung
from learners.history import LearningHistory
from learners.protocols import Transition
from learners.solomonoff import parse_program
from learners.solomonoff.transplant import carry, transplant_beliefs
from learners.teachers import make_teacher
from learners.transformer.agent import TransformerImitator

LOG2E = 1.0 / math.log(2.0)


@dataclass
class Measured:
    """Per-task components of each metric and per-episode curves of one (imitator, seed)."""

    #: (metric, T) -> {"kind": "mean" | "ratio", "values" or "num"/"den": per-task lists}
    metrics: dict[tuple[str, int | None], dict[str, Any]] = field(default_factory=dict)
    #: (curve, T) -> {"x": [...], "y": [...]} (mean over tasks)
    curves: dict[tuple[str, int | None], dict[str, list]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def mean(self, metric: str, T: int | None, values: list[float]) -> None:
        self.metrics[(metric, T)] = {"kind": "mean", "values": [float(v) for v in values]}

    def ratio(self, metric: str, T: int | None, num: list[float], den: list[float]) -> None:
        self.metrics[(metric, T)] = {"kind": "ratio", "num": [float(v) for v in num], "den": [float(v) for v in den]}

    def curve(self, name: str, T: int | None, x: Any, ys: list[np.ndarray]) -> None:
        self.curves[(name, T)] = {"x": [float(v) for v in np.asarray(x)], "y": [float(v) for v in np.mean(ys, axis=0)]}


def value(kind: str, comp: dict[str, Any]) -> float:
    """The cell's value of a metric from its per-task components (ratio of means for ratios)."""
    if comp["kind"] == "ratio":
        den = float(np.sum(comp["den"]))
        return float(np.sum(comp["num"]) / den) if den != 0 else float("nan")
    return float(np.mean(comp["values"]))


# ---------------------------------------------------------------------------------------------
# Agents
# ---------------------------------------------------------------------------------------------
def _env_spaces(rung: Rung, task: dict[str, Any]) -> tuple[Any, Any]:
    e = envs.make(rung.env_id, **task)
    try:
        return e.observation_space, e.action_space
    finally:
        e.close()


def teacher_after(data: RungData, task: dict[str, Any], history: LearningHistory, seed: int) -> Any:
    """The rung's teacher in the state it had after learning from ``history`` (its updates
    replayed on the recorded transitions: a tabular teacher's learning is a function of them)."""
    opts = dict(data.teacher)
    name = opts.pop("name")
    obs_space, act_space = _env_spaces(data.rung, task)
    t = make_teacher(name, obs_space, act_space, seed=seed, **opts)
    obs, act, rew = np.asarray(history.obs), np.asarray(history.action), np.asarray(history.reward)
    term, trunc = np.asarray(history.terminated), np.asarray(history.truncated)
    for i in range(len(history)):
        t.observe(Transition(obs[i], int(act[i]), float(rew[i]), history.next_obs(i), bool(term[i]), bool(trunc[i])))
    return t


def conditioning_history(history: LearningHistory, scheme: str, stride: int, context: int) -> LearningHistory:
    """What a transformer is shown of a truncated history (see ``TransformerSpec.conditioning``).

    ``contiguous``: the history as it is (the context keeps its last window). ``subsampled``: the
    episodes T-1, T-1-s, T-1-2s, ... (s = the model's smallest training stride), as many as fill
    the context, in order — a window of the kind the model was trained on, ending at T."""
    if scheme == "contiguous" or stride <= 1 or len(history) == 0:
        return history
    ep = np.asarray(history.episode)
    n_ep = int(ep[-1]) + 1
    mean_len = len(history) / n_ep
    n_keep = max(1, int(math.ceil(context / mean_len)))
    chosen = np.arange(n_ep - 1, -1, -stride)[:n_keep][::-1]
    sel = np.isin(ep, chosen)
    return LearningHistory.from_arrays(
        obs=np.asarray(history.obs)[sel], action=np.asarray(history.action)[sel], reward=np.asarray(history.reward)[sel],
        terminated=np.asarray(history.terminated)[sel], truncated=np.asarray(history.truncated)[sel],
        teacher_probs=np.asarray(history.teacher_probs)[sel])


@dataclass
class Imitators:
    """Builds the agent of every imitator and control for one cell seed of one rung."""

    data: RungData
    teacher_seed: int
    train_seed: int
    #: the study's evaluation-only override of the rung's conditioning scheme (None: the rung's)
    conditioning: str | None = None

    @property
    def rung(self) -> Rung:
        return self.data.rung

    def model(self, variant: str, T: int | None = None) -> Any:
        return load_model(self.data, ModelJob(self.rung.name, variant, T if variant == "beyond" else None, self.train_seed))

    def transformer(self, variant: str, T: int | None, history: LearningHistory | None, seed: int) -> TransformerImitator:
        tf = self.rung.transformer
        assert tf is not None
        model = self.model(variant, T)
        agent = TransformerImitator(model, seed=seed, slide=tf.slide)
        if history is not None and len(history):
            stride = 1 if variant == "expert" else min(int(k) for k in (tf.train.get("subsample") or [1]))
            agent.observe_history(conditioning_history(history, self.conditioning or tf.conditioning, stride,
                                                       model.cfg.context))
        return agent


# ---------------------------------------------------------------------------------------------
# The questions
# ---------------------------------------------------------------------------------------------
def _deciles(history: LearningHistory, per_step: np.ndarray) -> np.ndarray:
    ep = np.asarray(history.episode)
    d = np.minimum((10 * ep) // max(1, int(ep[-1]) + 1), 9)
    return np.array([per_step[d == i].mean() if np.any(d == i) else np.nan for i in range(10)])


def _run(agent: Any, rung: Rung, task: dict, episodes: int, seed: int) -> np.ndarray:
    res = closed_loop(agent, rung.env_id, episodes, seed, env_kwargs=task)
    return episode_values(rung, task, res.history)


def q1(im: Imitators, who: str) -> Measured:
    rung, data = im.rung, im.data
    out = Measured()
    kl_late, ll_late, agree, ret_now, kl_dec = [], [], [], [], []
    cum, bound, mass = [], [], []
    for j, task in enumerate(data.tasks):
        H = data.scored_history(j, im.teacher_seed)
        seed = data.seed("Q1", j, im.teacher_seed)
        agent: Any
        probs = None
        if who == "mixture":
            mix = mixture_for(rung, task)
            prog = parse_program(rung.teacher)
            probs = mix.predict_history(H, watch=[prog] if mix.class_info(prog)["hypotheses"] else [])
            ll = -np.log2(probs[np.arange(len(H)), np.asarray(H.action)])
            tp = np.asarray(H.teacher_probs, float)[np.arange(len(H)), np.asarray(H.action)]
            own = -np.log2((1 - mix.smoothing) * tp + mix.smoothing / mix.n_actions)
            cum.append(np.cumsum(ll))
            bound.append(np.cumsum(own) + mix.grammar.bits(prog) + mix.log2_normaliser)
            mass.append(mix.watch_trace[:, 0] if mix.watch_trace.shape[1] else np.zeros(len(H)))
            diag = mix.diagnostics()
            out.info.setdefault("misspecification", []).append(
                {"task": j, **{k: v for k, v in diag["misspecification"].items() if not isinstance(v, (list, dict))},
                 "map_mass": diag["map_mass"], "teacher_class_mass": float(mass[-1][-1])})
            agent = mix.compact()
        elif who in ("transformer", "expert_distillation"):
            variant = "expert" if who == "expert_distillation" else "within"
            probs = im.transformer(variant, None, None, seed).predict_history(H)
            agent = im.transformer(variant, None, H, seed)
        elif who == "uniform":
            agent = UniformRandom(H.n_actions, seed=seed)
            probs = agent.predict_history(H)
        elif who == "teacher_frozen":
            half = H.first_episodes(max(1, H.n_episodes // 2))
            frozen = FrozenTeacher(teacher_after(data, task, half, seed), seed=seed)
            obs = np.asarray(H.obs)
            probs = np.array([frozen.action_probs(obs[t]) for t in range(len(H))])
            agent = frozen
        elif who == "teacher_continued":
            agent = teacher_after(data, task, H, seed)
        else:
            raise ValueError(f"Q1 has no imitator {who!r}")
        if probs is not None:
            sc = score_predictions(probs, H)
            ep = np.asarray(H.episode)
            late = ep >= (9 * (int(ep[-1]) + 1)) // 10
            kl_late.append(sc.kl_bits[late].mean())
            ll_late.append(sc.log_loss_bits[late].mean())
            agree.append(sc.agree[late].mean())
            kl_dec.append(_deciles(H, sc.kl_bits))
        ret_now.append(_run(agent, rung, task, rung.q1_episodes, seed).mean())
    if kl_late:
        out.mean("kl_bits_late", None, kl_late)
        out.mean("log_loss_bits_late", None, ll_late)
        out.mean("agreement_late", None, agree)
        out.curve("kl_bits", None, np.arange(10), kl_dec)
    out.mean("return_now", None, ret_now)
    if "misspecification" in out.info:
        # 1 where the mixture's predictive check says the teacher is outside its class.
        out.mean("misspecified", None, [float(d["misspecified"]) for d in out.info["misspecification"]])
    if cum:
        n = min(len(c) for c in cum)
        x = np.unique(np.linspace(0, n - 1, min(n, 200)).astype(int))
        out.curve("cum_log_loss_bits", None, x, [c[x] for c in cum])
        out.curve("bound_bits", None, x, [b[x] for b in bound])
        out.curve("teacher_class_mass", None, x, [m[x] for m in mass])
    return out


def q2(im: Imitators, who: str, variant: str) -> Measured:
    rung, data = im.rung, im.data
    out = Measured()
    Ts = rung.Ts_beyond if variant == "beyond" else rung.Ts
    for T in Ts:
        w, kT = rung.window(T), rung.k * T
        num, den, gap, rT, rkT, curves = [], [], [], [], [], []
        for j, task in enumerate(data.tasks):
            H = data.scored_history(j, im.teacher_seed)
            teacher_vals = episode_values(rung, task, H)
            HT = H.first_episodes(T)
            seed = data.seed("Q2", T, j, im.teacher_seed)
            agent = _q2_agent(im, who, variant, T, task, HT, seed)
            vals = _run(agent, rung, task, kT - T, seed)
            R_T, R_kT, R_im = teacher_vals[T - w:T].mean(), teacher_vals[kT - w:kT].mean(), vals[-w:].mean()
            num.append(R_im - R_T)
            den.append(R_kT - R_T)
            gap.append(np.abs(vals - teacher_vals[T:kT]).mean())
            rT.append(R_T)
            rkT.append(R_im)
            curves.append(vals)
        out.ratio("continuation_ratio", T, num, den)
        # The ratio's denominator: where the teacher itself barely improves from T to kT the
        # ratio is undefined in practice, and this says so.
        out.mean("teacher_gain", T, den)
        out.mean("tracking_gap", T, gap)
        out.mean("return_T", T, rT)
        out.mean("return_kT", T, rkT)
        out.curve("return", T, np.arange(T, kT), curves)
    return out


def _q2_agent(im: Imitators, who: str, variant: str, T: int, task: dict, HT: LearningHistory, seed: int) -> Any:
    rung, data = im.rung, im.data
    if who == "mixture":
        mix = mixture_for(rung, task)
        mix.predict_history(HT)
        return mix.compact()
    if who == "mixture_prior":
        return mixture_for(rung, task).compact()
    if who == "transformer":
        return im.transformer(variant, T, HT, seed)
    if who == "transformer_empty":
        return im.transformer(variant, T, None, seed)
    if who == "expert_distillation":
        return im.transformer("expert", None, HT, seed)
    if who == "teacher_continued":
        return teacher_after(data, task, HT, seed)
    if who == "teacher_frozen":
        return FrozenTeacher(teacher_after(data, task, HT, seed), seed=seed)
    if who == "uniform":
        return UniformRandom(HT.n_actions, seed=seed)
    raise ValueError(f"Q2 has no imitator {who!r}")


def _q3_scores(runs: list[tuple[np.ndarray, np.ndarray]], n: int) -> Measured:
    """Q3's scores from (imitator's, fresh teacher's) episode returns per task: the ratio of areas
    under the curves, the first and last tenth (at least 3 episodes), and the curve."""
    out = Measured()
    w = max(3, n // 10)
    out.ratio("auc_ratio", None, [v.mean() for v, _ in runs], [r.mean() for _, r in runs])
    out.mean("return_first", None, [v[:w].mean() for v, _ in runs])
    out.mean("return_last", None, [v[-w:].mean() for v, _ in runs])
    out.curve("return", None, np.arange(n), [v for v, _ in runs])
    return out


def q3(im: Imitators, who: str) -> Measured:
    rung, data = im.rung, im.data
    runs: list[tuple[np.ndarray, np.ndarray]] = []
    n = rung.q3_episodes
    opts = dict(data.teacher)
    name = opts.pop("name")
    for j, task in enumerate(data.tasks):
        seed = data.seed("Q3", j, im.teacher_seed)
        obs_space, act_space = _env_spaces(rung, task)
        fresh = make_teacher(name, obs_space, act_space, seed=data.seed("Q3-fresh", j, im.teacher_seed), **opts)
        ref = _run(fresh, rung, task, n, seed)
        if who == "teacher_fresh":
            vals = ref
        else:
            vals = _run(_q3_agent(im, who, task, seed), rung, task, n, seed)
        runs.append((vals, ref))
    out = _q3_scores(runs, n)
    return out


def q3_transplant(im: Imitators, who: str, target: Rung) -> Measured:
    """Q3 (b): conditioned on a teacher history of this rung, switched to a task of another kind
    (``target``'s scored tasks, another size or env). The reference is the same algorithm started
    fresh on the new task (a fresh DQN on the new game); returns on the target's scale."""
    rung, data = im.rung, im.data
    tdata = RungData(target, data.teacher_seeds, data.scored)
    runs: list[tuple[np.ndarray, np.ndarray]] = []
    carried: list[float] = []
    n = target.q3_episodes
    opts = dict(data.teacher)
    name = opts.pop("name")
    src, carried_map = None, None
    if who == "mixture":
        # What the mixture believes about the algorithm after watching one training-task teacher
        # learn here (the same history as its held-out Q3).
        src_task, src_history = data.train_history(im.teacher_seed)
        src = mixture_for(rung, src_task)
        src.predict_history(src_history)
    for j, task in enumerate(tdata.tasks):
        seed = data.seed("Q3-transplant", target.name, j, im.teacher_seed)
        obs_space, act_space = _env_spaces(target, task)
        fresh = make_teacher(name, obs_space, act_space,
                             seed=data.seed("Q3-transplant-fresh", target.name, j, im.teacher_seed), **opts)
        ref = _run(fresh, target, task, n, seed)
        if who == "teacher_fresh":
            vals = ref
        elif who == "uniform":
            vals = _run(UniformRandom(int(act_space.n), seed=seed), target, task, n, seed)
        elif src is not None:
            # Those beliefs carried into the target's grammar; its programs learn the new task
            # from scratch.
            tgt = mixture_for(target, task)
            if carried_map is None:  # the target's grammar is the same for every task of its rung
                carried_map = carry(src, tgt)
            carried.append(transplant_beliefs(src, tgt, carried=carried_map)["carried_mass"])
            vals = _run(tgt.compact(), target, task, n, seed)
        else:
            raise ValueError(f"Q3 transplant has no imitator {who!r}")
        runs.append((vals, ref))
    out = _q3_scores(runs, n)
    out.info["transplant"] = {"to": target.name, "carried_mass": carried or None}
    return out


def _q3_agent(im: Imitators, who: str, task: dict, seed: int) -> Any:
    rung, data = im.rung, im.data
    if who == "mixture":
        # The mixture watches one training-task teacher learn (its beliefs about the algorithm),
        # then its programs restart on the new task: a fresh learner of the kind it identified.
        mix = mixture_for(rung, task)
        _, H = data.train_history(im.teacher_seed)
        mix.predict_history(H)
        mix.reset_programs()
        return mix.compact()
    if who == "mixture_prior":
        return mixture_for(rung, task).compact()
    if who == "transformer":
        return im.transformer("within", None, None, seed)
    if who == "expert_distillation":
        return im.transformer("expert", None, None, seed)
    if who == "uniform":
        return UniformRandom(int(_env_spaces(rung, task)[1].n), seed=seed)
    raise ValueError(f"Q3 has no imitator {who!r}")


def teacher_learning(im: Imitators) -> Measured:
    """The teacher's own learning curve on the held-out tasks (figure 1) and its final return."""
    rung, data = im.rung, im.data
    out = Measured()
    curves, final, to90 = [], [], []
    for j, task in enumerate(data.tasks):
        H = data.scored_history(j, im.teacher_seed)
        v = episode_values(rung, task, H)
        curves.append(v)
        tail = max(3, len(v) // 10)
        final.append(v[-tail:].mean())
        to90.append(steps_to_fraction(H, v, 0.9))
    out.mean("return_final", None, final)
    out.mean("steps_to_90", None, to90)
    out.curve("return", None, np.arange(len(curves[0])), curves)
    return out


def steps_to_fraction(history: LearningHistory, values: np.ndarray, frac: float) -> float:
    """Teacher steps until its running return (mean over a window of a tenth of the run) first
    reaches ``frac`` of its final return."""
    n = len(values)
    w = max(3, n // 10)
    final = values[-w:].mean()
    run = np.convolve(values, np.ones(w) / w, mode="valid")
    hit = np.flatnonzero(run >= frac * final)
    ep = (int(hit[0]) + w) if len(hit) else n
    starts = history.episode_starts()
    return float(starts[min(ep, len(starts) - 1)])


QUESTIONS: dict[str, Callable[..., Measured]] = {"Q1": q1, "Q2": q2, "Q3": q3}

__all__ = ["Measured", "Imitators", "q1", "q2", "q3", "q3_transplant", "teacher_learning", "value", "conditioning_history", "teacher_after"]
