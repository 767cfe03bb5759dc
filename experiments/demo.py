"""The main job on its embedded default: record a Dark Room learning history and summarise it.

    python -m experiments.demo                 # what `make demo` runs
    python -m experiments.demo --episodes 300 --goal test:3 --seed 1 --out runs/mydemo

Steps: (1) a tabular Q-learning teacher (epsilon-greedy 0.1, alpha 0.25, gamma 0.9) learns a
held-out Dark Room goal from scratch while the recorder writes its whole learning history to disk;
(2) the history is reloaded (checksums verified) and its learning curve printed against the
optimal return; (3) Q1 in miniature: along the second half of the history, the teacher-forced
scores of two control imitators — uniform random, and the teacher frozen at its mid-run snapshot.
Results (history + summary.json with config, seed and commit) go to ``--out``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

PROG = "python -m experiments.demo"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=(__doc__ or "").strip().splitlines()[0],
                                epilog=__doc__.split("\n\n", 2)[2] if __doc__ else None,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--episodes", type=int, default=1000, help="episodes the teacher learns for (default: 1000)")
    p.add_argument("--goal", default="test:0", help="task from the seeded Dark Room split, SPLIT:I (default: test:0)")
    p.add_argument("--size", type=int, default=9, help="Dark Room side (default: 9)")
    p.add_argument("--seed", type=int, default=0, help="seed of env and teacher (default: 0)")
    p.add_argument("--out", default=None, help="output directory (default: runs/demo-<time>)")
    args = p.parse_args(argv)
    if args.episodes < 2:
        p.error(f"--episodes must be at least 2, got {args.episodes}")
    if not 3 <= args.size <= 17:
        p.error(f"--size must be in 3..17, got {args.size}")

    from experiments.cli import UsageError, check_new_output, fail, write_json_atomic
    from experiments.protocol import FrozenTeacher, UniformRandom, teacher_forced, teacher_from_history
    from experiments.cli import learning_curve_summary, task_from_flag as _task_kwargs
    from learners.provenance import run_info
    from envs.tasks import optimal_return
    from learners import LearningHistory
    from learners.recorder import record
    from learners.teachers import make_teacher
    import envs

    env_id = "hypospace/DarkRoom-v0"
    try:
        task = _task_kwargs(env_id, args.goal, 0, {"size": args.size})
    except UsageError as e:
        fail(PROG, str(e))
    task = {"size": args.size, **task}
    out = check_new_output(PROG, args.out or f"runs/demo-{time.strftime('%Y%m%d-%H%M%S')}")
    out.mkdir(parents=True)
    config = {"env": env_id, "env_kwargs": task, "teacher": "q_learning", "epsilon": 0.1, "alpha": 0.25, "gamma": 0.9,
              "episodes": args.episodes, "seed": args.seed}

    print(f"[1/3] Q-learning learns Dark Room {args.size}x{args.size}, goal {task['goal']} ({args.goal}), {args.episodes} episodes")
    env = envs.make(env_id, **task)
    teacher = make_teacher("q_learning", env.observation_space, env.action_space, seed=args.seed,
                           epsilon=0.1, alpha=0.25, gamma=0.9)
    env.close()
    t0 = time.perf_counter()
    record(teacher, env_id, env_kwargs=task, episodes=args.episodes, seed=args.seed, snapshot_every=500,
           out=out / "history", progress=True, metadata={"run": run_info(seed=args.seed, config=config)})
    dt = time.perf_counter() - t0

    print("[2/3] reload (checksums verified) and learning curve")
    h = LearningHistory.load(out / "history")
    print(learning_curve_summary(h))
    opt = optimal_return(env_id, **task)
    returns = h.episode_returns()
    half = h.episode_starts()[h.n_episodes // 2]

    print("[3/3] Q1 in miniature: teacher-forced scores along the second half of the history")
    snap = max(s for s in h.snapshot_steps if s <= half)
    frozen = FrozenTeacher(teacher_from_history(h, snap))
    rows = {}
    second = slice(half, None)
    for name, imitator in (("uniform random", UniformRandom(h.n_actions)), (f"teacher frozen at step {snap}", frozen)):
        r = teacher_forced(imitator, h)
        rows[name] = {k: float(np.mean(getattr(r, k)[second])) for k in ("log_loss_bits", "kl_bits", "agree")}
    print(f"{'control imitator':34s} {'log-loss bits':>13s} {'KL bits':>9s} {'argmax agree':>12s}")
    for name, m in rows.items():
        print(f"{name:34s} {m['log_loss_bits']:13.3f} {m['kl_bits']:9.3f} {m['agree']:12.3f}")

    summary = {
        "steps": len(h), "episodes": h.n_episodes, "seconds": dt, "steps_per_second": len(h) / dt,
        "optimal_return": opt,
        "first_100_mean_return": float(np.mean(returns[:100])),
        "last_100_mean_return": float(np.mean(returns[-100:])),
        "last_100_fraction_of_optimal": float(np.mean(returns[-100:]) / opt),
        "controls_second_half": rows,
        "run": run_info(seed=args.seed, config=config),
    }
    write_json_atomic(out / "summary.json", summary)
    print(f"recorded {len(h)} steps in {dt:.1f}s ({len(h) / dt:,.0f} steps/s); results in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
