"""A small synthetic study directory in the study's output format: three rungs, both imitators,
the controls, one cell the mixture cannot run and one cell not yet measured. The numbers are
made up (plausible shapes, fixed seed); it exists so the paper can be built and checked without
running a study (tests, and anyone changing a figure).

    python -m experiments.paper.synthetic OUT_DIR
"""
from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path
from typing import Any

import numpy as np

from experiments.cli import fail
from experiments.paper.load import COVERAGE_COLUMNS, CURVES_COLUMNS, RESULTS_COLUMNS, SUMMARY_COLUMNS
from learners.files import write_json_atomic

SEEDS = (0, 1, 2)
Q2_TS = (10, 20, 40)
Q2_K = 3
RUNGS: list[dict[str, Any]] = [
    {"name": "bandit5", "env_id": "hypospace/Bandit-v0", "label": "Bandit, 5 arms",
     "complexity": {"log2_hypotheses": 18.5, "states_x_actions": 5, "teacher_params": 10, "teacher_steps_to_90": 300.0}},
    {"name": "darkroom5", "env_id": "hypospace/DarkRoom-v0", "label": "Dark Room 5x5",
     "complexity": {"log2_hypotheses": 27.0, "states_x_actions": 125, "teacher_params": 125, "teacher_steps_to_90": 2400.0}},
    {"name": "darkroom9", "env_id": "hypospace/DarkRoom-v0", "label": "Dark Room 9x9",
     "complexity": {"log2_hypotheses": None, "states_x_actions": 405, "teacher_params": 405, "teacher_steps_to_90": None}},
]
# The mixture's budget does not reach the largest rung; one transformer cell was never run.
CANNOT = {("darkroom9", "mixture")}
CANNOT_REASON = "hypothesis space exceeds the mixture's budget at this size"
CANNOT_COST = "~3e12 hypothesis-steps per predicted action"
MISSING = {("darkroom5", "transformer", "Q3", "transplant")}
# A cell run for some seeds only (as a study interrupted and not resumed leaves it): its rows
# exist with n = 1 (no interval), and coverage calls it missing.
PARTIAL = {("bandit5", "expert_distillation", "Q2", "within"): (0,)}

# (question, variant) -> the imitators and controls measured there, with each one's skill in [0, 1]
CELLS: dict[tuple[str, str], dict[str, float]] = {
    ("teacher", "learning"): {"teacher": 1.0},
    ("Q1", "now"): {"mixture": 0.9, "transformer": 0.7, "uniform": 0.0, "mixture_prior": 0.2, "transformer_empty": 0.1},
    ("Q2", "within"): {"mixture": 0.8, "transformer": 0.5, "teacher_continued": 1.0, "teacher_frozen": 0.0,
                       "expert_distillation": 0.1, "transformer_empty": 0.05},
    ("Q2", "beyond"): {"transformer": 0.3, "teacher_continued": 1.0, "teacher_frozen": 0.0},
    ("Q3", "heldout"): {"mixture": 0.7, "transformer": 0.4, "teacher_fresh": 1.0, "uniform": 0.0},
    ("Q3", "transplant"): {"mixture": 0.6, "transformer": 0.3, "teacher_fresh": 1.0, "uniform": 0.0},
}


def _learning(x: np.ndarray, rate: float) -> np.ndarray:
    return 1.0 - np.exp(-x / rate)


def _write_csv(path: Path, columns: tuple[str, ...], rows: list[tuple]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(columns)
        w.writerows(rows)


def write_synthetic_study(out: str | Path, *, seed: int = 0) -> Path:
    """Write a synthetic study into ``out`` (created; must not exist) and return its path."""
    out = Path(out)
    out.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    results: list[tuple] = []
    curves: list[tuple] = []
    coverage: list[tuple] = []

    def add_curve(rung, imitator, q, variant, curve, T, s, x, y):
        curves.extend((rung, imitator, q, variant, curve, "" if T is None else T, s, float(a), repr(float(b)))
                      for a, b in zip(x, y))

    def add_value(rung, imitator, q, variant, metric, T, s, v):
        results.append((rung, imitator, q, variant, metric, "" if T is None else T, s, repr(float(v))))

    for ri, rung in enumerate(RUNGS):
        name, hard = rung["name"], 1.0 + ri
        for (q, variant), who in CELLS.items():
            for imitator, skill in who.items():
                if (name, imitator) in CANNOT:
                    coverage.append((name, imitator, q, variant, "cannot", CANNOT_REASON, CANNOT_COST))
                    continue
                if (name, imitator, q, variant) in MISSING:
                    coverage.append((name, imitator, q, variant, "missing", "cell not run", ""))
                    continue
                seeds = PARTIAL.get((name, imitator, q, variant), SEEDS)
                if seeds != SEEDS:
                    coverage.append((name, imitator, q, variant, "missing",
                                     f"seeds {sorted(set(SEEDS) - set(seeds))} not run", ""))
                else:
                    coverage.append((name, imitator, q, variant, "done", "", ""))
                for s in seeds:
                    noise = lambda n: 0.03 * rng.standard_normal(n)  # noqa: E731
                    if q == "teacher":
                        x = np.arange(60)
                        y = np.clip(_learning(x, 8 * hard) + noise(60), 0, 1)
                        add_curve(name, imitator, q, variant, "return", None, s, x, y)
                        add_value(name, imitator, q, variant, "return_final", None, s, y[-10:].mean())
                    elif q == "Q1":
                        x = np.arange(10)
                        kl = (1.0 - skill) * 2.0 * hard * np.exp(-x / 6) + 0.05 + np.abs(noise(10))
                        add_curve(name, imitator, q, variant, "kl_bits", None, s, x, kl)
                        add_value(name, imitator, q, variant, "kl_bits_late", None, s, kl[-3:].mean())
                        add_value(name, imitator, q, variant, "log_loss_bits_late", None, s, kl[-3:].mean() + 0.8)
                        add_value(name, imitator, q, variant, "agreement_late", None, s, 0.2 + 0.75 * skill + noise(1)[0])
                        add_value(name, imitator, q, variant, "return_now", None, s, 0.9 * skill + noise(1)[0])
                        if imitator == "mixture":
                            steps = np.arange(0, 400, 4)
                            bound = 1.2 * steps + 40 * hard
                            add_curve(name, imitator, q, variant, "bound_bits", None, s, steps, bound)
                            add_curve(name, imitator, q, variant, "cum_log_loss_bits", None, s, steps,
                                      1.2 * steps + 30 * hard * (1 - np.exp(-steps / 50)) + np.abs(noise(len(steps))))
                            add_curve(name, imitator, q, variant, "teacher_class_mass", None, s, steps,
                                      np.clip(1 / (1 + np.exp(-(steps - 60 * hard) / 20)) + noise(len(steps)), 0, 1))
                    elif q == "Q2":
                        for T in Q2_TS:
                            x = np.arange(T, Q2_K * T)
                            start = _learning(np.float64(T), 8 * hard)
                            teacher = _learning(x.astype(float), 8 * hard)
                            y = np.clip(start + skill * (teacher - start) + noise(len(x)), 0, 1)
                            add_curve(name, imitator, q, variant, "return", T, s, x, y)
                            end = y[-5:].mean()
                            ratio = (end - start) / max(teacher[-1] - start, 1e-3)
                            add_value(name, imitator, q, variant, "continuation_ratio", T, s, ratio)
                            add_value(name, imitator, q, variant, "tracking_gap", T, s, float(np.mean(teacher - y)))
                            add_value(name, imitator, q, variant, "return_T", T, s, start)
                            add_value(name, imitator, q, variant, "return_kT", T, s, end)
                    else:
                        x = np.arange(40)
                        y = np.clip(0.1 + skill * 0.85 * _learning(x.astype(float), 6 * hard) + noise(40), 0, 1)
                        add_curve(name, imitator, q, variant, "return", None, s, x, y)
                        add_value(name, imitator, q, variant, "auc_ratio", None, s, 0.2 + 0.8 * skill + noise(1)[0])
                        add_value(name, imitator, q, variant, "return_first", None, s, y[:5].mean())
                        add_value(name, imitator, q, variant, "return_last", None, s, y[-5:].mean())

    groups: dict[tuple, list[float]] = {}
    for r in results:
        groups.setdefault(r[:6], []).append(float(r[7]))
    summary = []
    for key, vals in groups.items():
        v = np.array(vals)
        half = 1.96 * v.std(ddof=1) / math.sqrt(len(v)) if len(v) > 1 else math.nan
        # iqm left empty on Q1 rows, as a study may when it does not compute one
        iqm = "" if key[2] == "Q1" else repr(float(np.mean(np.sort(v)[len(v) // 4: len(v) - len(v) // 4])))
        # as the study writes them: a value it cannot define (no interval from one seed) is left empty
        lo, hi = ("", "") if math.isnan(half) else (repr(float(v.mean() - half)), repr(float(v.mean() + half)))
        summary.append((*key, repr(float(v.mean())), lo, hi, len(v), iqm))

    _write_csv(out / "results.csv", RESULTS_COLUMNS, results)
    _write_csv(out / "summary.csv", SUMMARY_COLUMNS, summary)
    _write_csv(out / "curves.csv", CURVES_COLUMNS, curves)
    _write_csv(out / "coverage.csv", COVERAGE_COLUMNS, coverage)
    write_json_atomic(out / "study.json", {
        "format": "hypospace.study/1", "preset": "synthetic",
        "config": {"q2_T": list(Q2_TS), "q2_k": Q2_K, "bootstrap_resamples": 10000},
        "rungs": RUNGS, "imitators": ["mixture", "transformer"], "questions": ["Q1", "Q2", "Q3"],
        "seeds": list(SEEDS),
        "provenance": {"commit": "0000000synthetic", "versions": {}, "seed": seed,
                       "command": f"python -m experiments.paper.synthetic (seed {seed})"},
    })
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.paper.synthetic", description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="the directory to create (must not exist)")
    p.add_argument("--seed", type=int, default=0, help="seed of the made-up numbers (default 0)")
    args = p.parse_args(argv)
    if Path(args.out).exists():
        fail(p.prog, f"{args.out} already exists")
    print(write_synthetic_study(args.out, seed=args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
