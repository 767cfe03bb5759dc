"""Scale the AD transformer's training compute and measure how its continuation follows.

    python -m experiments.scaling --preset smoke --out runs/scaling-smoke       # about a minute
    python -m experiments.scaling --preset default --out runs/scaling           # hours on 2 cores
    python -m experiments.scaling --preset default --out runs/scaling --resume  # after a kill
    python -m experiments.scaling --preset default --rungs bandit5 darkroom5 --out runs/scaling  # some rungs first

Trains the transformer at every compute level of the preset (depth x width x updates) with
several training seeds on the cheap rungs and measures, through the study layer, Q2-beyond and
Q2-within continuation ratios, the Q3 held-out score (auc_ratio) and the Q1 KL to the teacher
(kl_bits_late). Writes DIR/scaling.csv (rung, params, train_flops, flops_per_token, metric, seed,
value), DIR/fit.json (each metric against log10 training compute with bootstrap intervals; for the
continuation ratios the compute reaching 0.5 and 0.9, or the statement that the fit is flat or
falling; the mixture's exact cost and the teacher's compute beside them; configuration and
provenance) and one study directory per level under DIR/levels/. Draw it with
``python -m experiments.paper --scaling DIR``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from experiments.cli import described_parser, fail
from experiments.scaling.presets import PRESETS, describe, preset
from experiments.scaling.run import ScalingError, run_scaling
from experiments.study.executor import EXECUTORS
from experiments.study.run import StudyError

PROG = "python -m experiments.scaling"


def build_parser() -> argparse.ArgumentParser:
    presets = "\n\n".join(describe(preset(n)) for n in PRESETS)
    p = described_parser(PROG, __doc__, "Presets (the values each runs with):\n" + presets)
    p.add_argument("--preset", choices=list(PRESETS), default="smoke", help="sweep size (default: smoke)")
    p.add_argument("--out", required=True, help="output directory (new, or this sweep's with --resume)")
    p.add_argument("--resume", action="store_true", help="continue the sweep in --out (each level's study resumes)")
    p.add_argument("--rungs", nargs="+", metavar="RUNG",
                   help="only these of the preset's rungs (a later --resume with more adds them: finished levels are kept)")
    p.add_argument("--executor", choices=EXECUTORS, default="local", help="local process pool or Ray tasks (default: local)")
    p.add_argument("--workers", type=int, default=2, help="local worker processes / Ray CPUs (default: 2)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.workers < 1:
        fail(PROG, f"--workers must be >= 1, got {args.workers}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        fail(PROG, f"--out {out} is a file, not a directory")
    sp = preset(args.preset)
    if args.rungs:
        unknown = [r for r in args.rungs if r not in sp.rungs]
        if unknown:
            fail(PROG, f"unknown rung(s) {', '.join(unknown)} in preset {args.preset} (known: {', '.join(sp.rungs)})")
        sp.rungs = tuple(r for r in sp.rungs if r in args.rungs)
    command = " ".join([PROG, *argv])
    try:
        doc = run_scaling(sp, out, resume=args.resume, executor=args.executor,
                          workers=args.workers, progress=not args.no_progress, command=command)
    except (ScalingError, StudyError) as e:
        fail(PROG, str(e))
    except OSError as e:
        fail(PROG, f"cannot write {out}: {e.strerror or e}")
    except ModuleNotFoundError as e:
        if e.name == "ray":
            fail(PROG, "--executor ray needs Ray: pip install -e '.[ray]'")
        raise
    for rung, metrics in doc["fits"].items():
        for metric, f in metrics.items():
            if f.get("slope") is None:
                print(f"{rung:<10} {metric:<30} {f.get('note')}")
                continue
            print(f"{rung:<10} {metric:<30} slope {f['slope']:+.3f} per decade "
                  f"[{f['slope_ci'][0]:+.3f}, {f['slope_ci'][1]:+.3f}]")
            for c in f.get("crossings", []):
                print(f"{'':<10} {'':<30} {c['statement']}")
    print(f"-> {out}/scaling.csv, {out}/fit.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
