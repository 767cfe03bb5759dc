"""Q3 preview: conditioned on learning histories from training goals, acting on a test goal.

Fresh Q-learning teachers learn each of --train-goals Dark Room training goals for
--train-episodes; the mixture is shown all their histories (programs restart at each new
history, beliefs accumulate). It then acts alone on held-out test goals: "reset" restarts every
program (a fresh learner with the beliefs learnt), "carry" keeps the value tables of the last
training goal. A fresh teacher on the same test goal is the reference. Returns per episode, as
a fraction of the goal's optimal return, averaged over test goals x seeds in windows of
--window episodes, with 95% bootstrap intervals.

    python -m experiments.mixture_transplant --train-goals 2 --test-goals 4 --episodes 150 --out runs/transplant.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import numpy as np

from experiments.mixture_continuation import DEFAULT_KINDS, DEFAULT_PARTS, DEFAULT_TEACHER


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m experiments.mixture_transplant", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=9, help="Dark Room side (default 9)")
    p.add_argument("--teacher", default=DEFAULT_TEACHER, help=f"teacher program (default {DEFAULT_TEACHER!r})")
    p.add_argument("--budget", type=float, default=34.0, help="mixture budget in bits (default 34)")
    p.add_argument("--part-budgets", type=json.loads, default=DEFAULT_PARTS, help=f"JSON caps on TD parts (default {DEFAULT_PARTS})")
    p.add_argument("--kind-budgets", type=json.loads, default=DEFAULT_KINDS, help=f"JSON caps per kind (default {DEFAULT_KINDS})")
    p.add_argument("--train-goals", type=int, default=2, help="training goals shown (default 2)")
    p.add_argument("--train-episodes", type=int, default=100, help="teacher episodes per training goal (default 100)")
    p.add_argument("--test-goals", type=int, default=4, help="held-out test goals (default 4)")
    p.add_argument("--episodes", type=int, default=150, help="episodes on each test goal (default 150)")
    p.add_argument("--seeds", type=int, default=2, help="runs per test goal (default 2)")
    p.add_argument("--window", type=int, default=10, help="episodes per reported window (default 10)")
    p.add_argument("--out", required=True, help="results JSON (written atomically; must not exist)")
    p.add_argument("--threads", type=int, default=1,
                   help="worker threads of the mixture's compiled interpreter (default 1; other counts sum in "
                        "another order: results agree to 1e-12, not bit for bit)")
    p.add_argument("--progress", action="store_true", help="progress bars")
    return p


def run(args: argparse.Namespace) -> dict[str, Any]:
    import gymnasium as gym

    import envs  # noqa: F401
    from envs.tasks import optimal_return, task_split
    from experiments.protocol import closed_loop
    from learners.recorder import record
    from learners.solomonoff.draw import teacher_for
    from learners.solomonoff.grammar import parse_program
    from learners.solomonoff.mixture import Mixture
    from learners.teachers.base import make_teacher

    env_id = "hypospace/DarkRoom-v0"
    prog = parse_program(args.teacher)
    name, opts = teacher_for(prog)
    split = task_split(env_id, size=args.size, seed=0)
    train, test = split.train[: args.train_goals], split.test[: args.test_goals]
    if len(train) < args.train_goals or len(test) < args.test_goals:
        raise ValueError(f"the {args.size}x{args.size} split has {len(split.train)} train / {len(split.test)} test goals")
    t0 = time.perf_counter()
    mix = Mixture.for_env(env_id, args.budget, threads=args.threads, env_kwargs=train[0], part_budgets=args.part_budgets,
                          kind_budgets=args.kind_budgets, progress=args.progress)
    build_s = time.perf_counter() - t0
    in_space = bool(mix.class_info(prog)["hypotheses"])
    masses = []
    for j, kw in enumerate(train):
        env = gym.make(env_id, **kw)
        t = make_teacher(name, env.observation_space, env.action_space, seed=300 + j, **opts)
        h = record(t, env_id, env_kwargs=kw, episodes=args.train_episodes, seed=400 + j)
        mix.reset_programs()
        mix.predict_history(h, progress=args.progress)
        mix.check_bound()
        masses.append(mix.class_mass(prog) if in_space else 0.0)
    acting = mix.compact()
    curves: dict[str, list[np.ndarray]] = {"imitator_reset": [], "imitator_carry": [], "fresh_teacher": []}
    runs = [(g, s) for g in range(len(test)) for s in range(args.seeds)]
    bar = None
    if args.progress:
        from tqdm import tqdm

        bar = tqdm(total=len(runs), desc="transplant", unit="run")
    for g, s in runs:
        kw = test[g]
        env = gym.make(env_id, **kw)
        opt = optimal_return(env_id, **kw)
        seed = 50_000 + 100 * g + s
        reset = acting.clone()
        reset.reset_programs()
        curves["imitator_reset"].append(closed_loop(reset, env_id, args.episodes, seed, env_kwargs=kw).returns / opt)
        curves["imitator_carry"].append(closed_loop(acting.clone(), env_id, args.episodes, seed, env_kwargs=kw).returns / opt)
        fresh = make_teacher(name, env.observation_space, env.action_space, seed=600 + s, **opts)
        curves["fresh_teacher"].append(closed_loop(fresh, env_id, args.episodes, seed, env_kwargs=kw).returns / opt)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {}
    W = args.window
    nw = args.episodes // W
    for k, v in curves.items():
        arr = np.array(v)[:, : nw * W].reshape(len(v), nw, W).mean(axis=2)  # [runs, windows]
        boot = arr[rng.integers(0, len(arr), size=(2000, len(arr)))].mean(axis=1)
        out[k] = {"mean": arr.mean(0).tolist(), "lo": np.percentile(boot, 2.5, axis=0).tolist(),
                  "hi": np.percentile(boot, 97.5, axis=0).tolist()}
    return {"windows_end_episode": [W * (i + 1) for i in range(nw)], "fraction_of_optimal": out,
            "per_run": {k: [c.tolist() for c in v] for k, v in curves.items()},
            "summary": {"teacher": args.teacher, "teacher_in_space": in_space, "teacher_class_mass_after_each_goal": masses,
                        "top_after_training": acting.top(3), "train_goals": [t["goal"] for t in train],
                        "test_goals": [t["goal"] for t in test], "mixture": mix.summary(), "build_seconds": build_s}}


def main(argv: list[str] | None = None) -> int:
    from experiments.cli import check_new_output, fail, write_json_atomic
    from learners.provenance import run_info

    p = parser()
    args = p.parse_args(argv)
    if args.threads < 1:
        fail(p.prog, "--threads must be >= 1")
    if min(args.train_goals, args.train_episodes, args.test_goals, args.episodes, args.seeds, args.window) <= 0:
        fail(p.prog, "every count must be positive")
    if args.episodes < args.window:
        fail(p.prog, "--episodes must be at least --window")
    out = check_new_output(p.prog, args.out)
    try:
        res = run(args)
    except (ValueError, KeyError) as e:
        fail(p.prog, str(e).splitlines()[0])
    res["run_info"] = run_info(seed=0, config=vars(args))
    write_json_atomic(out, res)
    ends = res["windows_end_episode"]
    for k, v in res["fraction_of_optimal"].items():
        print(f"{k:<15} " + " ".join(f"{m:.2f}" for m in v["mean"]))
    print(f"{'(episode)':<15} " + " ".join(f"{e:>4}" for e in ends))
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
