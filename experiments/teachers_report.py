"""How well the registered tabular and bandit teachers learn: the figures the README quotes.

Dark Room 9x9 (every goal of the test split): Q-learning (epsilon-greedy 0.1, alpha 0.25,
gamma 0.9, zero init) learns for --episodes episodes; per goal it prints the optimal return
(20 - the goal's distance from the centre), the mean training return over the last 100 episodes
and its fraction of optimal, and whether the greedy policy of the final table (epsilon 0) earns
the optimal return on 3 episodes.

Bernoulli bandits (10 arms, the first --bandits test tasks): Thompson sampling, epsilon-greedy,
UCB1 (the registered teachers at their defaults) and uniform random pulls, --pulls pulls each;
it prints the cumulative expected regret at the last pull (mean over bandits, with its standard
error) and, as a check of sub-linear growth, the log-log slope of the mean regret from pull 100
on (1 for linear regret, 0.5 for sqrt(t), lower for log t).

Teacher i of the bandits is seeded i (+ --seed), and its env too (the recorder draws the
env's stream independently of the teacher's).

    python -m experiments.teachers_report --out runs/teachers_report.json
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm import tqdm

import envs
from envs.tasks import optimal_return, task_split
from experiments.cli import check_new_output, fail, write_json_atomic
from experiments.protocol import FrozenTeacher, closed_loop
from learners.provenance import run_info
from learners.recorder import record
from learners.teachers import make_teacher

PROG = "python -m experiments.teachers_report"
DARKROOM = "hypospace/DarkRoom-v0"
BANDIT = "hypospace/Bandit-v0"
Q_LEARNING = {"epsilon": 0.1, "alpha": 0.25, "gamma": 0.9, "init": 0.0}
BANDIT_TEACHERS = ("thompson", "bandit_eps_greedy", "ucb1", "uniform")
N_ARMS = 10
GREEDY_EPISODES = 3
LAST = 100  # episodes of the "last-100" training return


def build_parser() -> argparse.ArgumentParser:
    doc = (__doc__ or "").strip()
    p = argparse.ArgumentParser(prog=PROG, description=doc.splitlines()[0], epilog=doc.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--episodes", type=int, default=1000, metavar="N",
                   help=f"Q-learning episodes per Dark Room goal (default: 1000; at least {LAST})")
    p.add_argument("--pulls", type=int, default=1000, metavar="N", help="pulls per bandit (default: 1000; at least 200)")
    p.add_argument("--bandits", type=int, default=20, metavar="N", help="test bandits per teacher (default: 20)")
    p.add_argument("--split-seed", type=int, default=0, help="seed of both task splits (default: 0)")
    p.add_argument("--seed", type=int, default=0, help="seed of the Dark Room runs; the bandit runs use seed + i (default: 0)")
    p.add_argument("--parts", nargs="+", choices=("darkroom", "bandit"), default=["darkroom", "bandit"],
                   help="which measurements to run (default: both)")
    p.add_argument("--out", metavar="FILE", help="also write the figures, per-task rows and provenance to this JSON file (must not exist)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def darkroom_row(task: dict[str, Any], episodes: int, seed: int) -> dict[str, Any]:
    """Q-learning on one Dark Room goal: training returns and the final greedy policy's return."""
    env = envs.make(DARKROOM, **task)
    teacher = make_teacher("q_learning", env.observation_space, env.action_space, seed=seed, **Q_LEARNING)
    env.close()
    returns = record(teacher, DARKROOM, env_kwargs=task, episodes=episodes, seed=seed).episode_returns()
    greedy = make_teacher("q_learning", teacher.observation_space, teacher.action_space, seed=seed, **{**Q_LEARNING, "epsilon": 0.0})
    greedy.load_weights(teacher.weights())
    greedy_returns = closed_loop(FrozenTeacher(greedy), DARKROOM, GREEDY_EPISODES, seed=seed, env_kwargs=task).returns
    opt = optimal_return(DARKROOM, **task)
    last = float(np.mean(returns[-LAST:]))
    return {"goal": list(task["goal"]), "optimal_return": opt, "last_100_return": last, "last_100_fraction_of_optimal": last / opt,
            "first_20_return": float(np.mean(returns[:20])), "greedy_returns": [float(r) for r in greedy_returns],
            "greedy_optimal": bool(np.all(np.asarray(greedy_returns) == opt))}


def regret_curve(name: str, task: dict[str, Any], pulls: int, seed: int) -> np.ndarray:
    """Cumulative expected regret (best arm's mean minus the pulled arm's, summed) over ``pulls``."""
    means = np.asarray(task["means"], dtype=np.float64)
    if name == "uniform":
        arms = np.random.default_rng(seed).integers(0, means.size, pulls)
    else:
        teacher = make_teacher(name, gym.spaces.Discrete(1), gym.spaces.Discrete(means.size), seed=seed)
        arms = record(teacher, BANDIT, env_kwargs=task, episodes=pulls, seed=seed).action
    return np.cumsum(means.max() - means[arms])


def loglog_slope(mean_regret: np.ndarray, start: int = 100) -> float:
    """Least-squares slope of log(regret) against log(pull) from pull ``start`` on."""
    t = np.arange(1, mean_regret.size + 1)
    keep = t >= start
    return float(np.polyfit(np.log(t[keep]), np.log(mean_regret[keep]), 1)[0])


def measure(args: argparse.Namespace) -> dict[str, Any]:
    goals = task_split(DARKROOM, seed=args.split_seed).test if "darkroom" in args.parts else []
    bandits = task_split(BANDIT, seed=args.split_seed, n_arms=N_ARMS).test[: args.bandits] if "bandit" in args.parts else []
    bar = tqdm(total=len(goals) + len(bandits) * len(BANDIT_TEACHERS), unit="run", disable=args.no_progress, leave=False)
    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    if goals:
        rows = []
        bar.set_description("Dark Room Q-learning")
        for task in goals:
            rows.append(darkroom_row(task, args.episodes, args.seed))
            bar.update()
        fractions = [r["last_100_fraction_of_optimal"] for r in rows]
        out["darkroom"] = {"env": DARKROOM, "goals": len(rows), "episodes": args.episodes, "teacher": "q_learning",
                           "options": Q_LEARNING, "greedy_optimal_goals": sum(r["greedy_optimal"] for r in rows),
                           "last_100_fraction_min": min(fractions), "last_100_fraction_max": max(fractions),
                           "last_100_fraction_mean": float(np.mean(fractions)), "rows": rows,
                           "seconds": time.perf_counter() - t0}
    if bandits:
        t1 = time.perf_counter()
        figures = {}
        for name in BANDIT_TEACHERS:
            bar.set_description(f"bandit {name}")
            curves = []
            for i, task in enumerate(bandits):
                curves.append(regret_curve(name, task, args.pulls, args.seed + i))
                bar.update()
            final = np.array([c[-1] for c in curves])
            mean = np.mean(curves, axis=0)
            figures[name] = {"regret_mean": float(final.mean()),
                             "regret_sem": float(final.std(ddof=1) / np.sqrt(final.size)) if final.size > 1 else None,
                             "loglog_slope_from_100": loglog_slope(mean), "regret_each": final.tolist()}
        out["bandit"] = {"env": BANDIT, "arms": N_ARMS, "bandits": len(bandits), "pulls": args.pulls, "teachers": figures,
                         "seconds": time.perf_counter() - t1}
    bar.close()
    return out


def report(res: dict[str, Any]) -> str:
    lines = []
    if "darkroom" in res:
        d = res["darkroom"]
        lines.append(f"Dark Room 9x9, Q-learning {d['options']}, {d['goals']} test goals x {d['episodes']} episodes")
        lines.append("goal     optimal  last-100  fraction  greedy")
        for r in d["rows"]:
            lines.append(f"{str(r['goal']):8s} {r['optimal_return']:7.0f}  {r['last_100_return']:8.2f}  "
                         f"{r['last_100_fraction_of_optimal']:8.3f}  {'optimal' if r['greedy_optimal'] else r['greedy_returns']}")
        lines.append(f"greedy policy optimal on {d['greedy_optimal_goals']}/{d['goals']} goals; last-100 return "
                     f"{d['last_100_fraction_min']:.2f}-{d['last_100_fraction_max']:.2f} of optimal "
                     f"(mean {d['last_100_fraction_mean']:.3f}; {d['seconds']:.0f} s)")
    if "bandit" in res:
        b = res["bandit"]
        lines.append(f"Bernoulli bandits, {b['arms']} arms, {b['bandits']} test bandits, regret at {b['pulls']} pulls "
                     f"(mean ± s.e.; log-log slope from pull 100)")
        for name, f in b["teachers"].items():
            sem = f"± {f['regret_sem']:5.1f}" if f["regret_sem"] is not None else ""
            lines.append(f"{name:18s} {f['regret_mean']:7.1f} {sem}   slope {f['loglog_slope_from_100']:.2f}")
        lines.append(f"({b['seconds']:.0f} s)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    if args.episodes < LAST:
        fail(PROG, f"--episodes must be >= {LAST} (the last-{LAST} return), got {args.episodes}")
    if args.seed < 0 or args.split_seed < 0:
        fail(PROG, f"--seed and --split-seed must be >= 0, got {args.seed} and {args.split_seed}")
    if args.pulls < 200:
        fail(PROG, f"--pulls must be >= 200 (the regret slope is fitted from pull 100), got {args.pulls}")
    n_test = len(task_split(BANDIT, seed=args.split_seed, n_arms=N_ARMS).test)
    if not 1 <= args.bandits <= n_test:
        fail(PROG, f"--bandits must be between 1 and {n_test} (the test split's size), got {args.bandits}")
    out = check_new_output(PROG, args.out) if args.out else None
    res = measure(args)
    print(report(res))
    if out is not None:
        write_json_atomic(out, {**res, "run_info": run_info(seed=args.seed, config=vars(args))})
        print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
