"""Train a DQN teacher on Atari (or a toy env) and record its whole learning history.

    nice -n 10 python -m experiments.train_dqn --env ALE/Breakout-v5 --preset default \\
        --out runs/breakout_dqn --checkpoint-every 10000
    python -m experiments.train_dqn --resume runs/breakout_dqn          # after a kill
    python -m experiments.train_dqn --env ALE/Breakout-v5 --switch-to ALE/SpaceInvaders-v5 \\
        --switch-at 100000 --steps 200000 --out runs/transplant          # Breakout -> Space Invaders

The run goes through the recorder (``learners.recorder``): the history (one frame per step,
never stacked; ``teacher_probs``, ``teacher_values``, weight snapshots as safetensors) streams to
``<out>.partial`` and is renamed to ``<out>`` when complete. A transplant is a second segment:
the network, optimizer and buffer carry over as ``--on-switch-*`` say, and the ``segment`` column
marks the switch. Training curves go to ``<out>.metrics.csv`` (CleanRL's names:
charts/episodic_return = full game score, charts/SPS, losses/td_loss, losses/q_values) and to
TensorBoard in ``<out>.tb`` when tensorboard is installed. Atari follows Machado et al. 2018
(``envs.atari``). Set ``--threads`` deliberately on a shared machine.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import envs
from envs.atari import PROTOCOL
from experiments.cli import UsageError, add_config_arguments, check_new_output, config_overrides, fail, parse_kv
from learners.checkpoint import CheckpointError, load_state
from learners.provenance import run_info
from learners.recorder import CHECKPOINT, Recorder, Segment
from learners.teachers import make_teacher
from learners.teachers.dqn import DQNConfig, DQNLog  # torch is imported by the DQN itself, when it is built

PROG = "python -m experiments.train_dqn"


def build_parser() -> argparse.ArgumentParser:
    doc = (__doc__ or "").strip()
    p = argparse.ArgumentParser(prog=PROG, description=doc.splitlines()[0], epilog=doc.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", metavar="ID", help="env id: ALE/<Game>-v5 (Breakout, SpaceInvaders, Pong, ...) or hypospace/*")
    p.add_argument("--env-kwargs", nargs="*", metavar="KEY=VALUE", default=[], help="env kwargs, values as JSON")
    p.add_argument("--steps", type=int, metavar="N", help="steps to record (default: the preset's total_steps)")
    p.add_argument("--switch-to", metavar="ID", help="transplant: continue on this env from step --switch-at")
    p.add_argument("--switch-at", type=int, metavar="T", help="step at which the run switches to --switch-to")
    p.add_argument("--seed", type=int, default=0, help="seed of env and teacher (default: 0)")
    p.add_argument("--out", metavar="DIR", help="history directory to create (must not exist)")
    p.add_argument("--snapshot-every", type=int, default=10_000, metavar="N", help="weight snapshot every N steps (default: 10000)")
    p.add_argument("--checkpoint-every", type=int, default=10_000, metavar="N",
                   help="checkpoint every N steps so a killed run can be resumed (default: 10000; 0 = never)")
    p.add_argument("--log-every", type=int, default=100, metavar="N", help="log TD loss / mean Q / SPS every N updates (default: 100)")
    p.add_argument("--resume", metavar="DIR", help="continue the killed run whose --out was DIR (its options come from its checkpoint)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_config_arguments(p.add_argument_group("DQN options (learners.teachers.dqn.DQNConfig)"), DQNConfig)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = build_parser()
    args = p.parse_args(argv)
    if args.resume:
        extra = [a for a in argv if a not in ("--resume", args.resume, "--no-progress")]
        if extra:
            p.error(f"--resume takes no other options (the run's own are in its checkpoint); got {' '.join(extra)}")
        return _resume(args.resume, progress=not args.no_progress)
    if args.env is None or args.out is None:
        p.error("--env and --out are required (or --resume DIR)")
    for flag in ("steps", "snapshot_every", "log_every"):
        v = getattr(args, flag)
        if v is not None and v <= 0:
            p.error(f"--{flag.replace('_', '-')} must be positive, got {v}")
    if args.checkpoint_every < 0:
        p.error(f"--checkpoint-every must be >= 0, got {args.checkpoint_every}")
    if (args.switch_to is None) != (args.switch_at is None):
        p.error("--switch-to and --switch-at go together")
    try:
        options = config_overrides(args, DQNConfig)
        cfg = DQNConfig(**options)
        env_kwargs = parse_kv(args.env_kwargs)
    except (ValueError, TypeError, UsageError) as e:
        p.error(str(e))
    steps = args.steps if args.steps is not None else cfg.total_steps
    if "total_steps" not in options:
        options["total_steps"] = steps  # the epsilon schedule is planned over the run
    if args.switch_at is not None and not 0 < args.switch_at < steps:
        p.error(f"--switch-at must be in 1..{steps - 1} (inside the run), got {args.switch_at}")
    segments = [{"env": args.env, "env_kwargs": env_kwargs, "steps": args.switch_at or steps}]
    if args.switch_to:
        segments.append({"env": args.switch_to, "env_kwargs": env_kwargs if args.switch_to.startswith("hypospace/") else {},
                         "steps": steps - args.switch_at})
    _check_envs(segments)
    out = check_new_output(PROG, args.out)
    for side in (_metrics_path(out), _metrics_path(out, partial=True)):
        if side.exists():
            fail(PROG, f"{side} already exists (choose a new --out)")
    cli = {"segments": segments, "seed": args.seed, "teacher_options": options, "snapshot_every": args.snapshot_every,
           "checkpoint_every": args.checkpoint_every or None, "log_every": args.log_every, "argv": argv}
    return _run(cli, out, progress=not args.no_progress, resume=False)


def _check_envs(segments: list[dict[str, Any]]) -> None:


    for s in segments:
        try:
            kind = envs.env_kind(s["env"])
        except gym.error.Error:
            fail(PROG, f"unknown env {s['env']!r} (ALE/<Game>-v5 or one of {', '.join(envs.ENV_IDS)})")
        if kind == "bandit":
            fail(PROG, f"{s['env']}: DQN needs a state to learn from; use a bandit teacher")


def _metrics_path(out: Path, *, partial: bool = False) -> Path:
    return out.with_name(out.name + (".metrics.partial.csv" if partial else ".metrics.csv"))


def _run(cli: dict[str, Any], out: Path, *, progress: bool, resume: bool) -> int:


    segs = cli["segments"]
    try:
        env = envs.make(segs[0]["env"], **segs[0]["env_kwargs"])
    except Exception as e:  # unknown game, missing ROM, bad kwargs: one line
        fail(PROG, f"cannot make {segs[0]['env']}: {_one_line(e)}")
    try:
        teacher = make_teacher("dqn", env.observation_space, env.action_space, seed=cli["seed"], **cli["teacher_options"])
    except (ValueError, TypeError) as e:
        fail(PROG, f"dqn: {_one_line(e)}")
    finally:
        env.close()
    for s in segs[1:]:
        try:
            e2 = envs.make(s["env"], **s["env_kwargs"])
        except Exception as e:
            fail(PROG, f"cannot make {s['env']}: {_one_line(e)}")
        same = e2.observation_space == env.observation_space and e2.action_space == env.action_space
        e2.close()
        if not same:
            fail(PROG, f"cannot transplant {segs[0]['env']} -> {s['env']}: observation or action spaces differ")
    pixels = envs.env_kind(segs[0]["env"]) == "pixels"
    start = 0
    if resume:
        start = int(load_state(out.with_name(out.name + ".partial") / CHECKPOINT)["recorder"]["t"])
    try:
        log = DQNLog(_metrics_path(out, partial=True), every=cli["log_every"], tensorboard_dir=out.with_name(out.name + ".tb"),
                     resume_step=start if resume else None)
    except OSError as e:
        fail(PROG, f"cannot write the metrics log next to {out}: {_one_line(e)}")
    teacher.logger = log
    rec = Recorder(teacher, [Segment(s["env"], s["env_kwargs"], steps=s["steps"]) for s in segs], seed=cli["seed"],
                   snapshot_every=cli["snapshot_every"], out=out, checkpoint_every=cli["checkpoint_every"],
                   obs_transform=_newest_frame if pixels else None,
                   metadata={"cli": cli, "run": run_info(seed=cli["seed"], config=cli),
                             "protocol": _protocol() if pixels else None})
    try:
        h = rec.run(progress=progress, resume=resume)
    except OSError as e:
        log.close()
        keep = f" (the partial run stays in {out}.partial; free space, then --resume {out})" if cli["checkpoint_every"] else ""
        fail(PROG, f"writing {out}: {_one_line(e)}{keep}")
    except ValueError as e:
        log.close()
        fail(PROG, _one_line(e))
    log.close()
    os.replace(_metrics_path(out, partial=True), _metrics_path(out))
    assert h is not None
    print(curve_table(h))
    print(f"history written to {out}; training curves in {_metrics_path(out)}")
    return 0


def _resume(directory: str, *, progress: bool) -> int:
    out = Path(directory)
    if out.exists():
        fail(PROG, f"{out} is already complete; nothing to resume")
    try:
        state = load_state(out.with_name(out.name + ".partial") / CHECKPOINT)
    except CheckpointError as e:
        fail(PROG, f"cannot resume {out}: {_one_line(e)}")
    cli = (state.get("metadata") or {}).get("cli")
    if not cli or "segments" not in cli:
        fail(PROG, f"cannot resume {out}: its checkpoint was not written by {PROG}")
    return _run(cli, out, progress=progress, resume=True)


def _newest_frame(obs: Any) -> Any:
    return np.asarray(obs)[-1]


def _protocol() -> dict[str, Any]:
    return dict(PROTOCOL)


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


def curve_table(h: Any, bins: int = 10) -> str:
    """Mean full-game return per tenth of the run's episodes, per segment (the learning curve)."""
    returns = h.episode_returns()
    ends = np.flatnonzero(np.asarray(h.terminated) | np.asarray(h.truncated))
    done_eps = np.asarray(h.episode)[ends]
    seg = np.asarray(h.segment)[ends]
    end_steps = ends
    lines = [f"{len(h)} steps, {len(done_eps)} finished episodes"]
    for s in np.unique(seg) if len(seg) else []:
        sel = seg == s
        r, st = returns[done_eps[sel]], end_steps[sel]
        edges = np.linspace(0, len(r), min(bins, len(r)) + 1).astype(int)
        lines.append(f"segment {s}: episodes   ending by step   mean return   (n)")
        for lo, hi in zip(edges[:-1], edges[1:]):
            lines.append(f"  {lo:6d}-{hi - 1:<6d}   {int(st[hi - 1]):14d}   {float(np.mean(r[lo:hi])):11.2f}   ({hi - lo})")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
