"""Run the study: both imitators through the same three questions on the same histories, up the
complexity ladder, with controls and 95% intervals.

    python -m experiments.study --preset smoke --out runs/study-smoke          # minutes, 3 rungs
    python -m experiments.study --preset default --out runs/study              # the toy ladder
    python -m experiments.study --preset default --out runs/study --resume     # after a kill
    python -m experiments.study --preset smoke --rungs bandit5 --imitators mixture --questions Q2 --out runs/x
    python -m experiments.study --preset smoke --executor ray --out runs/x     # pip install -e '.[ray]'

Writes DIR/study.json (configuration, rungs and their complexity, provenance), DIR/cells/*.json
(one record per cell), DIR/results.csv (rung, imitator, question, variant, metric, T, seed,
value), DIR/summary.csv (mean, 95% stratified-bootstrap interval, n, IQM), DIR/curves.csv and
DIR/coverage.csv (done / missing / cannot, with the reason), and prints the summary table.
Histories and trained transformers are cached under $HYPOSPACE_CACHE (default data/cache).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from experiments.cli import described_parser, fail
from experiments.study.cells import CONTROLS, IMITATORS
from experiments.study.executor import EXECUTORS
from experiments.study.results import table
from experiments.study.rungs import PRESETS, describe, preset, set_transformer
from experiments.study.run import StudyError, run_study

PROG = "python -m experiments.study"
QUESTIONS = ("Q1", "Q2", "Q3")


def build_parser() -> argparse.ArgumentParser:
    presets = "\n\n".join(describe(preset(n)) for n in PRESETS)
    p = described_parser(PROG, __doc__, "Presets (the values each runs with):\n" + presets)
    p.add_argument("--preset", choices=list(PRESETS), default="smoke", help="study size (default: smoke)")
    p.add_argument("--out", required=True, help="study directory (new, or an existing one of the same study with --resume)")
    p.add_argument("--resume", action="store_true", help="continue the study in --out, skipping cells already done")
    p.add_argument("--rungs", nargs="+", metavar="RUNG", help="only these rungs (default: all of the preset)")
    p.add_argument("--imitators", nargs="+", metavar="NAME", help=f"only these imitators/controls: {', '.join(IMITATORS + CONTROLS)}")
    p.add_argument("--questions", nargs="+", metavar="Q", help=f"only these questions: {', '.join(QUESTIONS)}")
    p.add_argument("--seeds", nargs="+", type=int, metavar="S", help="only these cell seeds (default: all of the preset)")
    p.add_argument("--T", nargs="+", type=int, metavar="T", help="Q2 truncation points in episodes for every selected rung")
    p.add_argument("--executor", choices=EXECUTORS, default="local", help="local process pool or Ray tasks (default: local)")
    p.add_argument("--workers", type=int, default=2, help="local worker processes / Ray CPUs (default: 2)")
    p.add_argument("--ray-address", default=None, help="Ray cluster address (default: start a local Ray)")
    p.add_argument("--score-on", choices=("test", "val"), default="test",
                   help="score the held-out test tasks (the result; default) or the validation tasks (for choices)")
    p.add_argument("--conditioning", choices=("subsampled", "contiguous"), default=None,
                   help="override every rung's transformer conditioning scheme (evaluation only; same trained models)")
    p.add_argument("--transformer-set", nargs="+", metavar="KEY=VALUE", default=[],
                   help="change the selected rungs' transformer: model.<field>, train.<field> or a TransformerSpec field "
                        "(train_episodes, seeds_per_task, ...); VALUE is JSON, e.g. train.subsample=[4,8,16]. A changed "
                        "rung trains its own models: for comparing settings on --score-on val")
    p.add_argument("--tables-only", action="store_true",
                   help="run nothing: rewrite the tables of the study in --out from the cells it holds "
                        "(a study killed mid-rung; its unfinished cells are listed as missing)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    pr = preset(args.preset)
    pr.score_on, pr.conditioning = args.score_on, args.conditioning
    names = [r.name for r in pr.rungs]
    if args.rungs:
        unknown = [r for r in args.rungs if r not in names]
        if unknown:
            fail(PROG, f"unknown rung(s) {', '.join(unknown)} in preset {args.preset} (known: {', '.join(names)})")
    rungs = [r for r in pr.rungs if not args.rungs or r.name in args.rungs]
    if args.imitators:
        unknown = [i for i in args.imitators if i not in IMITATORS + CONTROLS]
        if unknown:
            fail(PROG, f"unknown imitator(s) {', '.join(unknown)} (known: {', '.join(IMITATORS + CONTROLS)})")
    if args.questions:
        unknown = [q for q in args.questions if q not in QUESTIONS]
        if unknown:
            fail(PROG, f"unknown question(s) {', '.join(unknown)} (known: {', '.join(QUESTIONS)})")
    if args.seeds:
        bad = [s for s in args.seeds if s not in pr.seeds]
        if bad:
            fail(PROG, f"seed(s) {bad} not in the preset's seeds {pr.seeds}")
    if args.workers < 1:
        fail(PROG, f"--workers must be >= 1, got {args.workers}")
    for item in args.transformer_set:
        try:
            for r in rungs:
                set_transformer(r, item)
        except ValueError as e:
            fail(PROG, f"--transformer-set {item}: {e}")
    if args.T:
        for r in rungs:
            r.Ts = tuple(sorted(set(args.T)))
            r.Ts_beyond = tuple(t for t in r.Ts_beyond if t in r.Ts) or (r.Ts[-1],)
    command = " ".join([PROG, *argv])
    try:
        summary = run_study(pr, rungs, Path(args.out), imitators=set(args.imitators) if args.imitators else None,
                            questions=set(args.questions) if args.questions else None, seeds=args.seeds,
                            resume=args.resume, executor=args.executor, workers=args.workers,
                            ray_address=args.ray_address, progress=not args.no_progress, command=command,
                            tables_only=args.tables_only)
    except StudyError as e:
        fail(PROG, str(e))
    except ModuleNotFoundError as e:
        if e.name == "ray":
            fail(PROG, "--executor ray needs Ray: pip install -e '.[ray]'")
        raise
    print(table(summary, [r.name for r in rungs]))
    print(f"-> {args.out}/summary.csv (95% stratified-bootstrap intervals over seeds: {pr.teacher_seeds} teacher seeds, "
          f"x {pr.train_seeds} training seeds for the transformers; column n)")
    if pr.score_on == "val":
        print("   scored on the VALIDATION tasks: for choices (e.g. --conditioning), never a reported result")
    return 0


if __name__ == "__main__":
    sys.exit(main())
