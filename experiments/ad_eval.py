"""Evaluate trained AD transformers: in-context RL on held-out tasks, the expert-distillation
contrast, and teacher-forced tracking of held-out teachers.

    python -m experiments.ad_eval --runs runs/ad-dark-s0 runs/ad-dark-s1 runs/ad-dark-s2 \\
        --expert-runs runs/ed-dark-s0 runs/ed-dark-s1 runs/ed-dark-s2 --out results/ad_darkroom
    python -m experiments.ad_eval --runs runs/ad-bandit-s0 --out results/ad_bandit

What it measures (every run must be trained on the same env and task split):

1. In-context RL (Q3-style transfer to tasks never in the training data): each frozen model
   starts from an empty context on every held-out task of the split (``--tasks``) for
   ``--seeds`` evaluation seeds and acts alone for ``--episodes`` episodes, its own steps
   entering its context (``learners.transformer.incontext``, which reproduces
   ``experiments.protocol.closed_loop`` run by run). Dark Room: return per episode divided by
   the *tabular teacher's final return* on that goal (the teacher of the training histories,
   trained from scratch on the held-out goal for ``--reference-episodes`` episodes, mean of
   its last 10%), averaged over goals and seeds; the uniform-random policy and the teacher's
   own learning curve are given on the same scale. Bandits: expected regret per pull
   (max mean - mean of the pulled arm) by quarter of the run, against the teacher (Thompson)
   and uniform random. Across training seeds: mean and 95% t-interval.
2. Expert distillation (``--expert-runs``): the same, for models trained only on the
   teachers' final episodes — the contrast.
3. Teacher-forced tracking (Q1 preview): along held-out teachers' histories (the spec's
   validation histories), per-step KL(teacher_probs || model) in bits, in the first and last
   20% of each history's episodes (early vs late in learning), with the uniform control.

Results go to OUT/results.json (with config, seed, commit) and a table on stdout.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

PROG = "python -m experiments.ad_eval"


def t_interval(x: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and half-width of the 95% Student-t interval along ``axis`` (half-width NaN for n < 2)."""
    from scipy import stats

    x = np.asarray(x, float)
    n = x.shape[axis]
    m = x.mean(axis)
    if n < 2:
        return m, np.full_like(m, np.nan)
    se = x.std(axis, ddof=1) / math.sqrt(n)
    return m, se * stats.t.ppf(0.975, n - 1)


def load_run(path: str | Path) -> tuple[Any, dict[str, Any]]:
    from learners.transformer.checkpoint import model_from_checkpoint

    p = Path(path)
    cfgp = p / "config.json"
    if not cfgp.exists():
        raise FileNotFoundError(f"{p}: not a training run (config.json missing)")
    cfg = json.loads(cfgp.read_text())["config"]
    mdir = p / "model"
    if not (mdir / "meta.json").exists():
        raise FileNotFoundError(f"{p}: training has not finished (model/ missing)")
    model, _ = model_from_checkpoint(mdir)
    return model, cfg


def reference_teacher_spec(spec: Any, given: dict | None) -> dict:
    """The tabular teacher results are measured against: ``given``, else the spec's first teacher,
    else (noise-injected data) Dark Room's standard Q-learning teacher."""
    if given:
        return dict(given)
    if spec.source == "teacher":
        return dict(spec.teachers[0])
    return {"name": "thompson"} if spec.env_id == "hypospace/Bandit-v0" else {"name": "q_learning"}


def reference_runs(spec: Any, teacher: dict, tasks: list[dict], episodes: int, seeds: int) -> list:
    """Histories of ``teacher`` learning each held-out task from scratch, ``[tasks][seeds]``."""
    from learners.transformer.corpus import HistoryJob

    return [[HistoryJob(spec.env_id, task, dict(teacher), 10_000 + s, 20_000 + s, episodes, "teacher", (1, 0.0)).record(None)
             for s in range(seeds)] for task in tasks]


def reference_teacher(spec: Any, teacher: dict, tasks: list[dict], episodes: int, seeds: int) -> np.ndarray:
    """Returns ``[tasks, seeds, episodes]`` of ``teacher`` learning each task from scratch."""
    runs = reference_runs(spec, teacher, tasks, episodes, seeds)
    return np.array([[h.episode_returns()[:episodes] for h in row] for row in runs])


def uniform_returns(env_id: str, tasks: list[dict], episodes: int, seeds: int) -> np.ndarray:
    from experiments.protocol import UniformRandom, closed_loop
    import envs

    out = np.zeros((len(tasks), seeds, episodes))
    for i, task in enumerate(tasks):
        n = envs.make(env_id, **task).action_space.n
        for s in range(seeds):
            out[i, s] = closed_loop(UniformRandom(n, seed=s), env_id, episodes, 30_000 + s, env_kwargs=task).returns
    return out


def bandit_regret(tasks: list[dict], actions: np.ndarray, seeds: int) -> np.ndarray:
    """``[tasks, seeds, T]`` expected regret of each pull."""
    means = np.array([t["means"] for t in tasks])  # [N, A]
    a = actions.reshape(len(tasks), seeds, -1)
    best = means.max(1)[:, None, None]
    return best - np.take_along_axis(means[:, None, :], a, axis=2)


def incontext(model, spec, tasks, episodes, seeds, progress) -> np.ndarray:
    from learners.transformer.incontext import incontext_rollouts

    r = incontext_rollouts(model, spec.env_id, tasks, list(range(seeds)), episodes, progress=progress)
    return r


def teacher_forced_kl(model, val_paths: list[Path], max_histories: int) -> dict[str, float]:
    from experiments.protocol import UniformRandom, teacher_forced
    from learners.history import LearningHistory
    from learners.transformer.agent import TransformerImitator

    early, late, u_early, u_late, dec = [], [], [], [], []
    for p in val_paths[:max_histories]:
        h = LearningHistory.load(p)
        res = teacher_forced(TransformerImitator(model), h)
        uni = teacher_forced(UniformRandom(h.n_actions), h)
        ep = np.asarray(h.episode)
        E = h.n_episodes
        lo, hi = ep < max(1, int(0.2 * E)), ep >= E - max(1, int(0.2 * E))
        dec.append([res.kl_bits[(ep >= E * i / 10) & (ep < E * (i + 1) / 10)].mean() for i in range(10)])
        early.append(res.kl_bits[lo].mean())
        late.append(res.kl_bits[hi].mean())
        u_early.append(uni.kl_bits[lo].mean())
        u_late.append(uni.kl_bits[hi].mean())
    return {"kl_bits_early": float(np.mean(early)), "kl_bits_late": float(np.mean(late)),
            "uniform_kl_bits_early": float(np.mean(u_early)), "uniform_kl_bits_late": float(np.mean(u_late)),
            "kl_bits_by_decile": np.mean(dec, 0).tolist(), "histories": len(early)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=(__doc__ or "").strip().splitlines()[0],
                                epilog=(__doc__ or "").split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", nargs="+", required=True, help="training run directories (AD models; one per training seed)")
    p.add_argument("--expert-runs", nargs="*", default=[], help="expert-distillation run directories (the contrast)")
    p.add_argument("--out", required=True, help="output directory for results.json (must not exist)")
    p.add_argument("--episodes", type=int, default=None, help="in-context episodes per run (default: the preset's)")
    p.add_argument("--seeds", type=int, default=None, help="evaluation seeds per held-out task (default: the preset's)")
    p.add_argument("--tasks", type=int, default=None, help="held-out tasks (default: the preset's)")
    p.add_argument("--reference-episodes", type=int, default=1000, help="Dark Room: episodes the reference teacher learns for (default: 1000)")
    p.add_argument("--reference-seeds", type=int, default=3, help="seeds of the reference teacher per task (default: 3)")
    p.add_argument("--reference-teacher", type=json.loads, default=None,
                   help='teacher results are measured against, JSON like {"name": "q_learning"} (default: the '
                        "training histories' teacher; Dark Room's standard Q-learning for noise-injected data)")
    p.add_argument("--tf-histories", type=int, default=16, help="held-out teacher histories for teacher-forced KL (default: 16)")
    p.add_argument("--cache-dir", default="data/transformer", help="history cache (default: data/transformer)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    from experiments.cli import check_new_output, fail, write_json_atomic

    for name in ("episodes", "seeds", "tasks"):
        v = getattr(args, name)
        if v is not None and v < 1:
            fail(PROG, f"--{name} must be >= 1, got {v}")
    out = check_new_output(PROG, args.out)
    import torch

    torch.set_num_threads(args.threads)
    from envs.tasks import optimal_return
    from learners.provenance import run_info
    from learners.transformer.corpus import DataSpec, ensure_histories, jobs, task_split_of

    try:
        loaded = [load_run(r) for r in args.runs]
        expert = [load_run(r) for r in args.expert_runs]
    except (FileNotFoundError, ValueError, KeyError) as e:
        fail(PROG, str(e))
    cfg0 = loaded[0][1]
    spec = DataSpec(**cfg0["data"])
    for _, c in loaded + expert:
        s = DataSpec(**c["data"])
        if (s.env_id, s.split, s.split_seed) != (spec.env_id, spec.split, spec.split_seed):
            fail(PROG, "all runs must share env and task split")
    ev = cfg0.get("eval", {})
    episodes = args.episodes or ev.get("episodes", 40)
    seeds = args.seeds or ev.get("seeds", 1)
    n_tasks = args.tasks or ev.get("tasks", 16)
    tasks = task_split_of(spec).test[:n_tasks]
    bandit = spec.env_id == "hypospace/Bandit-v0"
    prog = not args.no_progress
    result: dict[str, Any] = {"env_id": spec.env_id, "tasks": len(tasks), "seeds": seeds, "episodes": episodes,
                              "runs": args.runs, "expert_runs": args.expert_runs}

    def curves(models: list) -> dict[str, Any]:
        per_run = []
        for model, _ in models:
            r = incontext(model, spec, tasks, episodes, seeds, prog)
            if bandit:
                per_run.append(bandit_regret(tasks, r.actions, seeds).mean((0, 1)))  # [T]
            else:
                per_run.append(r.returns.reshape(len(tasks), seeds, episodes))
        return per_run

    ref_teacher = reference_teacher_spec(spec, args.reference_teacher)
    result["reference_teacher"] = ref_teacher
    if bandit:
        T = episodes
        runs = reference_runs(spec, ref_teacher, tasks, T, seeds)
        th_reg = np.mean([bandit_regret([task], np.asarray(h.action)[None, None], 1)[0, 0]
                          for task, row in zip(tasks, runs) for h in row], 0)
        means = np.array([t["means"] for t in tasks])
        rand_reg = float((means.max(1) - means.mean(1)).mean())
        q = lambda x: [float(np.mean(c)) for c in np.array_split(np.asarray(x), 4, axis=-1)]  # noqa: E731
        ad = curves(loaded)
        ad_q = np.array([q(c) for c in ad])
        m, h = t_interval(ad_q)
        result["regret_by_quarter"] = {"ad_mean": m.tolist(), "ad_ci95": h.tolist(), "ad_per_run": ad_q.tolist(),
                                       "teacher": q(th_reg), "uniform": [rand_reg] * 4}
        if expert:
            ed_q = np.array([q(c) for c in curves(expert)])
            m2, h2 = t_interval(ed_q)
            result["regret_by_quarter"].update({"expert_mean": m2.tolist(), "expert_ci95": h2.tolist()})
    else:
        opt = np.array([optimal_return(spec.env_id, **t) for t in tasks])
        ref = reference_teacher(spec, ref_teacher, tasks, args.reference_episodes, args.reference_seeds)
        tail = max(1, args.reference_episodes // 10)
        final = ref[:, :, -tail:].mean((1, 2))  # [tasks] teacher's final return
        uni = uniform_returns(spec.env_id, tasks, episodes, seeds)
        norm = lambda R: (R / final[:, None, None]).mean((0, 1))  # noqa: E731  [E]
        raw = curves(loaded)
        ad = np.array([norm(R) for R in raw])  # [runs, E]
        m, h = t_interval(ad)
        late = slice(max(0, episodes - 5), episodes)
        hm, hh = t_interval(ad[:, late].mean(1))
        fm, fh = t_interval(ad[:, :3].mean(1))
        result["headline"] = {
            "last5_episodes": [late.start + 1, episodes], "ad_last5_mean": float(hm), "ad_last5_ci95": float(hh),
            "ad_first3_mean": float(fm), "ad_first3_ci95": float(fh), "uniform_first3": float(norm(uni)[:3].mean()),
            "target": 0.7, "reached": bool(hm >= 0.7),
        }
        # Per held-out goal (over the last 5 episodes, runs and seeds): where does it fail?
        per_goal = np.mean([(R[:, :, late] / final[:, None, None]).mean((1, 2)) for R in raw], 0)
        result["per_task_last5"] = [{"task": t, "optimal": float(o), "teacher_final": float(f), "ad": float(g)}
                                    for t, o, f, g in zip(tasks, opt, final, per_goal)]
        result["teacher_final_return"] = {"mean": float(final.mean()), "per_task": final.tolist(),
                                          "optimal_mean": float(opt.mean()), "fraction_of_optimal": float((final / opt).mean())}
        result["normalised_return"] = {
            "ad_mean": m.tolist(), "ad_ci95": h.tolist(), "ad_per_run": ad.tolist(),
            "uniform": norm(uni).tolist(),
            "teacher_learning": (ref[:, :, :episodes] / final[:, None, None]).mean((0, 1)).tolist(),
        }
        if expert:
            ed = np.array([norm(R) for R in curves(expert)])
            m2, h2 = t_interval(ed)
            em, eh = t_interval(ed[:, late].mean(1))
            result["headline"].update({"expert_last5_mean": float(em), "expert_last5_ci95": float(eh)})
            result["normalised_return"].update({"expert_mean": m2.tolist(), "expert_ci95": h2.tolist(), "expert_per_run": ed.tolist()})
    # Teacher-forced tracking on held-out teachers.
    val_jobs = jobs(spec, "val")
    if val_jobs and args.tf_histories:
        paths = ensure_histories(val_jobs, args.cache_dir)
        result["teacher_forced"] = {"ad": [teacher_forced_kl(mdl, paths, args.tf_histories) for mdl, _ in loaded]}
        if expert:
            result["teacher_forced"]["expert"] = [teacher_forced_kl(mdl, paths, args.tf_histories) for mdl, _ in expert]
    out.mkdir(parents=True)
    write_json_atomic(out / "results.json", {"result": result, "run": run_info(seed=None, config=vars(args))})
    print_table(result)
    return 0


def print_table(res: dict[str, Any]) -> None:
    if "normalised_return" in res:
        n = res["normalised_return"]
        print(f"held-out tasks: {res['tasks']} x {res['seeds']} seeds; teacher final return {res['teacher_final_return']['mean']:.2f} "
              f"({res['teacher_final_return']['fraction_of_optimal']:.2f} of optimal)")
        print("episode  AD (mean ± 95% CI over training seeds)   expert-dist.        uniform  teacher-from-scratch")
        E = len(n["ad_mean"])
        for e in sorted(set([0, 1, 2, 4, 9, 14, 19, 24, 29, 34, 39, E - 1]) & set(range(E))):
            ed = f"{n['expert_mean'][e]:.3f} ± {n['expert_ci95'][e]:.3f}" if "expert_mean" in n else "-"
            print(f"{e + 1:7d}  {n['ad_mean'][e]:.3f} ± {n['ad_ci95'][e]:.3f}{'':22s}{ed:18s}  {n['uniform'][e]:.3f}    {n['teacher_learning'][e]:.3f}")
    if "headline" in res:
        hd = res["headline"]
        print(f"headline: AD episodes {hd['last5_episodes'][0]}-{hd['last5_episodes'][1]}: {hd['ad_last5_mean']:.3f} ± {hd['ad_last5_ci95']:.3f} "
              f"of the teacher's final return (target {hd['target']}); first 3 episodes {hd['ad_first3_mean']:.3f} "
              f"(uniform {hd['uniform_first3']:.3f})" + (f"; expert distillation {hd['expert_last5_mean']:.3f} ± {hd['expert_last5_ci95']:.3f}" if "expert_last5_mean" in hd else ""))
    if "regret_by_quarter" in res:
        r = res["regret_by_quarter"]
        print("per-pull regret by quarter: AD", [f"{x:.3f}" for x in r["ad_mean"]], "±", [f"{x:.3f}" for x in r["ad_ci95"]])
        print("                            teacher", [f"{x:.3f}" for x in r["teacher"]], " uniform", f"{r['uniform'][0]:.3f}")
        if "expert_mean" in r:
            print("                            expert", [f"{x:.3f}" for x in r["expert_mean"]])
    if "teacher_forced" in res:
        for k, v in res["teacher_forced"].items():
            e = np.mean([x["kl_bits_early"] for x in v])
            l = np.mean([x["kl_bits_late"] for x in v])
            print(f"teacher-forced KL ({k}): early {e:.3f} bits/step, late {l:.3f} (uniform: {v[0]['uniform_kl_bits_early']:.3f}, {v[0]['uniform_kl_bits_late']:.3f})")


if __name__ == "__main__":
    sys.exit(main())
