"""Q2 preview: after watching a learner for T episodes, does the mixture keep improving like it?

A Q-learning teacher learns Dark Room for T episodes (its history is recorded). The mixture is
conditioned on that history, then acts alone for (k-1) T more episodes (its own actions are
interventions: every program's value table keeps learning from what the mixture does, beliefs
stay frozen). The teacher, restored to its state at T, is continued for the same episodes; a
frozen snapshot of the teacher at T is the "stops learning" control. Returns are averaged over a
window of the last w episodes (w = max(5, T/5)) at T and at kT, and

    continuation_ratio = (R_imitator(kT) - R_teacher(T)) / (R_teacher(kT) - R_teacher(T))

(1 = keeps improving like the learner, 0 = frozen at what it saw), per T, pooled over seeds
(goals x teacher seeds) as a ratio of means, with a 95% bootstrap interval over seeds.

    python -m experiments.mixture_continuation --T 25 50 100 200 --seeds 5 --out runs/continuation.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import numpy as np

DEFAULT_TEACHER = "QLearning(init=0, alpha=1/4, gamma=9/10, explore=eps_greedy(1/10))"
#: A box of the TD code space that holds the standard teacher (34 bits): init 0, step sizes up to
#: 5 bits, targets up to 7 bits, discounts up to 9 bits, action rules up to 11 bits.
DEFAULT_PARTS = {"init": 1, "alpha": 5, "target": 7, "gamma": 9, "explore": 11}
DEFAULT_KINDS = {"Constant": 22, "Stochastic": 20, "Cyclic": 22, "Reactive": 22}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m experiments.mixture_continuation", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=9, help="Dark Room side (default 9)")
    p.add_argument("--teacher", default=DEFAULT_TEACHER, help=f"teacher program (default {DEFAULT_TEACHER!r})")
    p.add_argument("--budget", type=float, default=34.0, help="mixture budget in bits (default 34)")
    p.add_argument("--part-budgets", type=json.loads, default=DEFAULT_PARTS, help=f"JSON caps on TD parts (default {DEFAULT_PARTS})")
    p.add_argument("--kind-budgets", type=json.loads, default=DEFAULT_KINDS, help=f"JSON caps per kind (default {DEFAULT_KINDS})")
    p.add_argument("--T", type=int, nargs="+", default=[25, 50, 100, 200], help="truncation points in episodes")
    p.add_argument("--k", type=int, default=4, help="continue to k*T episodes (default 4: 3T more)")
    p.add_argument("--seeds", type=int, default=5, help="goals x teacher seeds (default 5)")
    p.add_argument("--continuations", type=int, default=2, help="closed-loop runs per conditioned mixture / teacher (default 2)")
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples for the intervals")
    p.add_argument("--out", required=True, help="results JSON (written atomically; must not exist)")
    p.add_argument("--threads", type=int, default=1,
                   help="worker threads of the mixture's compiled interpreter (default 1; other counts sum in "
                        "another order: results agree to 1e-12, not bit for bit)")
    p.add_argument("--progress", action="store_true", help="progress bars")
    return p


def window(T: int) -> int:
    return max(5, T // 5)


def ratio_of_means(imit: np.ndarray, t_T: np.ndarray, t_kT: np.ndarray) -> float:
    den = t_kT.mean() - t_T.mean()
    return float((imit.mean() - t_T.mean()) / den) if den != 0 else float("nan")


def bootstrap(imit, t_T, t_kT, n: int, rng) -> list[float]:
    idx = rng.integers(0, len(imit), size=(n, len(imit)))
    vals = np.array([ratio_of_means(imit[i], t_T[i], t_kT[i]) for i in idx])
    vals = vals[np.isfinite(vals)]
    return [float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5))] if vals.size else [float("nan")] * 2


def run(args: argparse.Namespace) -> dict[str, Any]:
    import gymnasium as gym

    import envs  # noqa: F401
    from envs.tasks import optimal_return, task_split
    from experiments.protocol import FrozenTeacher, closed_loop
    from learners.protocols import Transition
    from learners.recorder import record
    from learners.solomonoff.checks import assert_bound
    from learners.solomonoff.draw import teacher_for
    from learners.solomonoff.grammar import parse_program
    from learners.solomonoff.mixture import Mixture
    from learners.teachers.base import make_teacher

    env_id = "hypospace/DarkRoom-v0"
    prog = parse_program(args.teacher)
    name, opts = teacher_for(prog)
    goals = task_split(env_id, size=args.size, seed=0).train
    Ts = sorted(set(args.T))
    t0 = time.perf_counter()
    base = Mixture.for_env(env_id, args.budget, threads=args.threads, env_kwargs=goals[0], part_budgets=args.part_budgets,
                           kind_budgets=args.kind_budgets, progress=args.progress)
    build_s = time.perf_counter() - t0
    in_space = bool(base.class_info(prog)["hypotheses"])
    rows = []
    bar = None
    if args.progress:
        from tqdm import tqdm

        bar = tqdm(total=args.seeds * len(Ts), desc="continuation", unit="(seed,T)")
    for i in range(args.seeds):
        kw = goals[i % len(goals)]
        env = gym.make(env_id, **kw)
        opt = optimal_return(env_id, **kw)
        teacher = make_teacher(name, env.observation_space, env.action_space, seed=100 + i, **opts)
        full = record(teacher, env_id, env_kwargs=kw, episodes=max(Ts), seed=200 + i)
        rets = full.episode_returns()
        mix = base.clone()
        seen = 0
        for T in Ts:
            hist = full.first_episodes(T)
            mix.predict_history(hist, start=seen)
            seen = len(hist)
            assert_bound(mix, hist, teacher=prog if in_space else None)
            mass = mix.class_mass(prog) if in_space else 0.0
            # the teacher restored at T: replay its updates on the history
            tT = make_teacher(name, env.observation_space, env.action_space, seed=100 + i, **opts)
            for t in range(len(hist)):
                tT.observe(Transition(int(hist.obs[t]), int(hist.action[t]), float(hist.reward[t]), int(hist.next_obs(t)),
                                      bool(hist.terminated[t]), bool(hist.truncated[t])))
            snap = tT.weights()
            more = (args.k - 1) * T
            w = window(T)
            acting = mix.compact()
            cur = {"imitator": [], "teacher": [], "frozen": []}
            for c in range(args.continuations):
                seed = 10_000 * (i + 1) + 100 * T + c
                cur["imitator"].append(closed_loop(acting.clone(), env_id, more, seed, env_kwargs=kw).returns)
                tc = make_teacher(name, env.observation_space, env.action_space, seed=100 + i, **opts)
                tc.load_weights(snap)
                cur["teacher"].append(closed_loop(tc, env_id, more, seed, env_kwargs=kw).returns)
                cur["frozen"].append(closed_loop(FrozenTeacher(tT, snap), env_id, more, seed, env_kwargs=kw).returns)
            curves = {k: np.mean(v, axis=0) for k, v in cur.items()}
            r_t_T = float(rets[T - w:T].mean())
            row = {"seed": i, "goal": kw["goal"], "optimal_return": opt, "T": T, "k": args.k, "window": w,
                   "teacher_class_mass_at_T": mass, "top_at_T": acting.top(3), "hypotheses_acting": acting.n_hypotheses,
                   "R_teacher_T": r_t_T,
                   "R_teacher_kT": float(curves["teacher"][-w:].mean()),
                   "R_imitator_kT": float(curves["imitator"][-w:].mean()),
                   "R_frozen_kT": float(curves["frozen"][-w:].mean()),
                   "curve_teacher": curves["teacher"].tolist(), "curve_imitator": curves["imitator"].tolist(),
                   "curve_frozen": curves["frozen"].tolist(), "teacher_returns_to_T": rets[:T].tolist()}
            den = row["R_teacher_kT"] - r_t_T
            row["continuation_ratio"] = (row["R_imitator_kT"] - r_t_T) / den if den else None
            row["frozen_ratio"] = (row["R_frozen_kT"] - r_t_T) / den if den else None
            rows.append(row)
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"seed {i} T {T}: ratio {row['continuation_ratio']}")
    if bar is not None:
        bar.close()
    rng = np.random.default_rng(0)
    per_T = {}
    for T in Ts:
        rs = [r for r in rows if r["T"] == T]
        im = np.array([r["R_imitator_kT"] for r in rs])
        fz = np.array([r["R_frozen_kT"] for r in rs])
        a = np.array([r["R_teacher_T"] for r in rs])
        b = np.array([r["R_teacher_kT"] for r in rs])
        per_T[str(T)] = {
            "continuation_ratio": ratio_of_means(im, a, b), "interval_95": bootstrap(im, a, b, args.bootstrap, rng),
            "frozen_ratio": ratio_of_means(fz, a, b), "frozen_interval_95": bootstrap(fz, a, b, args.bootstrap, rng),
            "R_teacher_T": float(a.mean()), "R_teacher_kT": float(b.mean()), "R_imitator_kT": float(im.mean()),
            "R_frozen_kT": float(fz.mean()), "seeds": len(rs),
            "teacher_class_mass_at_T": [r["teacher_class_mass_at_T"] for r in rs],
        }
    return {"rows": rows, "per_T": per_T,
            "summary": {"teacher": args.teacher, "teacher_in_space": in_space, "mixture": base.summary(),
                        "build_seconds": build_s}}


def main(argv: list[str] | None = None) -> int:
    from experiments.cli import check_new_output, fail, write_json_atomic
    from learners.provenance import run_info

    p = parser()
    args = p.parse_args(argv)
    if args.threads < 1:
        fail(p.prog, "--threads must be >= 1")
    if args.seeds <= 0 or args.continuations <= 0 or args.k < 2 or min(args.T) < 5 or args.size < 3:
        fail(p.prog, "--seeds/--continuations must be positive, --k >= 2, every --T >= 5, --size >= 3")
    out = check_new_output(p.prog, args.out)
    try:
        res = run(args)
    except (ValueError, KeyError) as e:
        fail(p.prog, str(e).splitlines()[0])
    res["run_info"] = run_info(seed=0, config=vars(args))
    write_json_atomic(out, res)
    for T, v in res["per_T"].items():
        lo, hi = v["interval_95"]
        print(f"T={T:>4}: R_teacher(T)={v['R_teacher_T']:.2f} R_teacher(kT)={v['R_teacher_kT']:.2f} "
              f"R_imitator(kT)={v['R_imitator_kT']:.2f} continuation_ratio={v['continuation_ratio']:.2f} [{lo:.2f}, {hi:.2f}] "
              f"frozen={v['frozen_ratio']:.2f}")
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
