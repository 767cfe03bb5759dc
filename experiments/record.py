"""Record a teacher's whole learning history.

    python -m experiments.record --env hypospace/DarkRoom-v0 --teacher q_learning \\
        --episodes 1000 --seed 0 --out runs/darkroom_q --task test:0 --epsilon 0.1

The history directory holds one memory-mappable .npy file per column, weight snapshots, and a
manifest with sha256 checksums and the run's provenance (config, seed, commit, versions). It is
written under ``<out>.partial`` and renamed when complete; a run with ``--checkpoint-every`` that
is killed is continued with ``--resume <out>``.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import envs
from experiments.cli import (UsageError, add_config_arguments, check_new_output, config_overrides, fail,
                             learning_curve_summary, parse_kv, task_from_flag)
from learners.checkpoint import CheckpointError, load_state
from learners.provenance import run_info
from learners.recorder import CHECKPOINT, Recorder, Segment
from learners.teachers import TEACHERS, make_teacher

PROG = "python -m experiments.record"


def _env_list() -> str:
    return ", ".join(envs.ENV_IDS) + ", ALE/<Game>-v5 (e.g. ALE/Breakout-v5, ALE/SpaceInvaders-v5, ALE/Pong-v5)"


def _teacher_list() -> str:
    return "; ".join(f"{n} ({', '.join(s.env_kinds)}): {s.summary}" for n, s in sorted(TEACHERS.items()))


def build_parser(teacher: str | None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description=(__doc__ or "").strip().splitlines()[0],
        epilog=f"envs: {_env_list()}.\n\nteachers: {_teacher_list()}.\n\n"
               "Teacher options: `--teacher NAME --help` lists the options of that teacher.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--env", metavar="ID", help="environment id (see the list below)")
    p.add_argument("--teacher", metavar="NAME", help="teacher (see the list below)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--episodes", type=int, metavar="N", help="record N episodes")
    g.add_argument("--steps", type=int, metavar="N", help="record N steps")
    p.add_argument("--seed", type=int, default=0, help="seed of the env and the teacher (default: 0)")
    p.add_argument("--out", metavar="DIR", help="history directory to create (must not exist)")
    p.add_argument("--task", metavar="SPLIT:I", help="take the task (env kwargs) from envs.tasks.task_split: e.g. train:0, test:3")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the task split used by --task (default: 0)")
    p.add_argument("--env-kwargs", nargs="*", metavar="KEY=VALUE", default=[], help="env kwargs, values as JSON (e.g. size=9 goal=[2,7])")
    p.add_argument("--snapshot-every", type=int, metavar="N", help="weight snapshot every N steps (and at the end); default: every 1000 steps")
    p.add_argument("--checkpoint-every", type=int, metavar="N", help="checkpoint every N steps so a killed run can be resumed")
    p.add_argument("--resume", metavar="DIR", help="continue the killed run whose --out was DIR (all other options come from its checkpoint)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    if teacher is not None and teacher in TEACHERS:
        tg = p.add_argument_group(f"{teacher} options")
        add_config_arguments(tg, TEACHERS[teacher].cls.Config)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    pre = argparse.ArgumentParser(prog=PROG, add_help=False)
    pre.add_argument("--teacher")
    pre.add_argument("--resume")
    known, _ = pre.parse_known_args(argv)
    teacher_name = known.teacher
    if known.resume:
        return _resume(known.resume, argv)

    p = build_parser(teacher_name)
    args = p.parse_args(argv)
    if args.env is None or args.teacher is None or args.out is None or (args.episodes is None and args.steps is None):
        p.error("--env, --teacher, --out and one of --episodes/--steps are required")
    if args.teacher not in TEACHERS:
        p.error(f"unknown teacher {args.teacher!r}; known: {', '.join(sorted(TEACHERS))}")
    n = args.episodes if args.episodes is not None else args.steps
    if n <= 0:
        p.error(f"--{'episodes' if args.episodes is not None else 'steps'} must be positive, got {n}")
    for flag in ("snapshot_every", "checkpoint_every"):
        v = getattr(args, flag)
        if v is not None and v <= 0:
            p.error(f"--{flag.replace('_', '-')} must be positive, got {v}")
    try:
        kind = envs.env_kind(args.env)
    except gym.error.Error:
        p.error(f"unknown env {args.env!r}; known: {_env_list()}")
    spec = TEACHERS[args.teacher]
    if kind not in spec.env_kinds:
        p.error(f"teacher {args.teacher!r} does not fit {args.env} (a {kind} env); it takes {', '.join(spec.env_kinds)} envs")
    try:
        env_kwargs = parse_kv(args.env_kwargs)
        if args.task:
            env_kwargs = {**task_from_flag(args.env, args.task, args.split_seed, env_kwargs), **env_kwargs}
    except UsageError as e:
        p.error(str(e))
    out = check_new_output(PROG, args.out)
    options = config_overrides(args, spec.cls.Config)
    if args.steps is not None and "total_steps" in {f.name for f in dataclasses.fields(spec.cls.Config)} \
            and "total_steps" not in options:
        options["total_steps"] = args.steps   # a schedule planned over the run (as train_dqn sets it)
    cli = {"env": args.env, "env_kwargs": env_kwargs, "teacher": args.teacher, "teacher_options": options,
           "episodes": args.episodes, "steps": args.steps, "seed": args.seed,
           "snapshot_every": args.snapshot_every or 1000, "checkpoint_every": args.checkpoint_every,
           "task": args.task, "split_seed": args.split_seed, "argv": argv}
    return _run(cli, out, progress=not args.no_progress, resume=False)


def _run(cli: dict[str, Any], out: Path, *, progress: bool, resume: bool) -> int:
    try:
        env = envs.make(cli["env"], **cli["env_kwargs"])
    except Exception as e:  # bad env kwargs, missing ROM, ...
        fail(PROG, f"cannot make {cli['env']} with {cli['env_kwargs']}: {_one_line(e)}")
    try:
        options = dict(cli["teacher_options"])
        if "optimal" in {f.name for f in dataclasses.fields(TEACHERS[cli["teacher"]].cls.Config)} and options.get("optimal") is None:
            options["optimal"] = env.unwrapped.optimal_actions().tolist()  # a fact of the task (noisy_optimal)
        teacher = make_teacher(cli["teacher"], env.observation_space, env.action_space, seed=cli["seed"], **options)
    except (ValueError, TypeError, AttributeError) as e:
        fail(PROG, f"teacher {cli['teacher']}: {_one_line(e)}")
    finally:
        env.close()
    seg = Segment(cli["env"], cli["env_kwargs"], episodes=cli["episodes"], steps=cli["steps"])
    obs_transform = None
    if envs.env_kind(cli["env"]) == "pixels":
        # The teacher acts on a frame stack; the history stores each frame once (the newest),
        # and stacks are rebuilt by index when read.
        obs_transform = _newest_frame
    rec = Recorder(teacher, [seg], seed=cli["seed"], snapshot_every=cli["snapshot_every"], out=out,
                   checkpoint_every=cli["checkpoint_every"], obs_transform=obs_transform,
                   metadata={"cli": cli, "run": run_info(seed=cli["seed"], config=cli)})
    try:
        h = rec.run(progress=progress, resume=resume)
    except OSError as e:
        fail(PROG, f"writing {out}: {_one_line(e)}" + (f" (the partial run stays in {out}.partial; continue with --resume {out})" if cli["checkpoint_every"] else ""))
    except ValueError as e:
        fail(PROG, _one_line(e))
    assert h is not None
    print(learning_curve_summary(h))
    print(f"history written to {out}")
    return 0


def _resume(directory: str, argv: list[str]) -> int:
    out = Path(directory)
    if out.exists():
        fail(PROG, f"{out} is already complete; nothing to resume")
    ck = out.with_name(out.name + ".partial") / CHECKPOINT
    try:
        state = load_state(ck)
    except CheckpointError as e:
        fail(PROG, f"cannot resume {out}: {_one_line(e)}")
    cli = state.get("metadata", {}).get("cli")
    if cli is None:
        fail(PROG, f"cannot resume {out}: the checkpoint does not say how the run was started")
    extra = [a for a in argv if a not in ("--resume", directory, "--no-progress")]
    if extra:
        fail(PROG, f"--resume takes no other options (the run's own are in its checkpoint); got {' '.join(extra)}")
    return _run(cli, out, progress="--no-progress" not in argv, resume=True)


def _newest_frame(obs: Any) -> np.ndarray:
    return np.asarray(obs)[-1]


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__



if __name__ == "__main__":
    sys.exit(main())
