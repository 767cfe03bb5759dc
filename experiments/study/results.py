"""Gather the cells' records into the study's tables (nothing is recomputed from raw data).

``results.csv`` (one row per measured value), ``summary.csv`` (mean, 95% interval, n and IQM per
(rung, imitator, question, variant, metric, T)), ``curves.csv`` (per-seed curves, long format)
and ``coverage.csv`` (done / missing / cannot, with the reason) — the format the paper reads.
"""
from __future__ import annotations

import csv
import io
import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from experiments.study.stats import interval, iqm

RESULT_COLUMNS = ("rung", "imitator", "question", "variant", "metric", "T", "seed", "value")
SUMMARY_COLUMNS = ("rung", "imitator", "question", "variant", "metric", "T", "mean", "ci_low", "ci_high", "n", "iqm")
CURVE_COLUMNS = ("rung", "imitator", "question", "variant", "curve", "T", "seed", "x", "y")
COVERAGE_COLUMNS = ("rung", "imitator", "question", "variant", "status", "reason", "cost_estimate")
#: Metrics on the normalised-return scale: their summary also carries the IQM.
NORMALISED = {"return_now", "return_T", "return_kT", "return_first", "return_last", "return_final"}


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        # An infinite value is a measurement (a deterministic control's KL where the teacher puts
        # mass on an action it never takes): written as inf, not as a gap. NaN (undefined) is empty.
        if np.isinf(v):
            return "inf" if v > 0 else "-inf"
        return "" if np.isnan(v) else repr(round(v, 10))
    return str(v)


def write_csv(path: Path, columns: Iterable[str], rows: Iterable[dict[str, Any]]) -> None:
    """Write a CSV atomically (temporary name, then rename)."""
    cols = list(columns)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow([_fmt(r.get(c)) for c in cols])
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(buf.getvalue())
    os.replace(tmp, path)


def load_records(out: Path) -> list[dict[str, Any]]:
    recs = []
    for p in sorted((out / "cells").glob("*.json")):
        recs.append(json.loads(p.read_text()))
    return recs


def gather(out: Path, coverage: list[dict[str, str]], expected: dict[tuple[str, str, str, str], set[int]],
           *, resamples: int) -> list[dict[str, Any]]:
    """Write results/summary/curves/coverage CSVs from the cell records in ``out/cells``;
    returns the summary rows."""
    recs = load_records(out)
    results, curves = [], []
    groups: dict[tuple, dict[int, dict[str, Any]]] = defaultdict(dict)
    done: dict[tuple, set[int]] = defaultdict(set)
    for rec in recs:
        c = rec["cell"]
        done[(c["rung"], c["imitator"], c["question"], c["variant"])].add(int(c["seed"]))
        for r in rec["rows"]:
            results.append({k: r[k] for k in RESULT_COLUMNS})
            key = (r["rung"], r["imitator"], r["question"], r["variant"], r["metric"], r["T"])
            groups[key][int(r["seed"])] = r
        for cv in rec["curves"]:
            for x, y in zip(cv["x"], cv["y"]):
                curves.append({**{k: cv[k] for k in ("rung", "imitator", "question", "variant", "curve", "T", "seed")},
                               "x": x, "y": y})
    results.sort(key=lambda r: (r["rung"], r["imitator"], r["question"], r["variant"], r["metric"],
                                -1 if r["T"] is None else r["T"], r["seed"]))
    curves.sort(key=lambda r: (r["rung"], r["imitator"], r["question"], r["variant"], r["curve"],
                               -1 if r["T"] is None else r["T"], r["seed"], r["x"]))
    summary = []
    for key in sorted(groups, key=lambda k: (*k[:5], -1 if k[5] is None else k[5])):
        by_seed = groups[key]
        seeds = sorted(by_seed)
        first = by_seed[seeds[0]]
        if first["kind"] == "ratio":
            num = np.array([by_seed[s]["num"] for s in seeds])
            den = np.array([by_seed[s]["den"] for s in seeds])
            point, lo, hi = interval("ratio", num, den, resamples=resamples)
            vals = None
        else:
            num = np.array([by_seed[s]["values"] for s in seeds])
            point, lo, hi = interval("mean", num, resamples=resamples)
            vals = num
        rung, im, q, v, metric, T = key
        summary.append({"rung": rung, "imitator": im, "question": q, "variant": v, "metric": metric, "T": T,
                        "mean": point, "ci_low": lo, "ci_high": hi, "n": len(seeds),
                        "iqm": iqm(vals) if (vals is not None and metric in NORMALISED) else None})
    cov_rows = []
    for c in coverage:
        k = (c["rung"], c["imitator"], c["question"], c["variant"])
        if c["status"] == "cannot":
            cov_rows.append(c)
            continue
        want = expected.get(k, set())
        have = done.get(k, set())
        missing = sorted(want - have)
        cov_rows.append({**c, "status": "missing" if missing else "done",
                         "reason": f"seeds {missing} not run" if missing else ""})
    write_csv(out / "results.csv", RESULT_COLUMNS, results)
    write_csv(out / "summary.csv", SUMMARY_COLUMNS, summary)
    write_csv(out / "curves.csv", CURVE_COLUMNS, curves)
    write_csv(out / "coverage.csv", COVERAGE_COLUMNS, cov_rows)
    return summary


HEADLINE = (("Q1", "now", "kl_bits_late", "Q1 KL late (bits/step)"),
            ("Q2", "within", "continuation_ratio", "Q2 ratio within"),
            ("Q2", "beyond", "continuation_ratio", "Q2 ratio beyond"),
            ("Q3", "heldout", "auc_ratio", "Q3 AUC ratio"),
            ("Q3", "transplant", "auc_ratio", "Q3 transplant AUC ratio"))


def table(summary: list[dict[str, Any]], rungs: list[str]) -> str:
    """Both imitators side by side, per question and rung, with 95% intervals (the printed
    answer of a study)."""
    idx = {(r["rung"], r["imitator"], r["question"], r["variant"], r["metric"], r["T"]): r for r in summary}

    def cell(rung: str, im: str, q: str, v: str, m: str, T: Any) -> str:
        r = idx.get((rung, im, q, v, m, T))
        if r is None:
            return "-"
        if r["ci_low"] is None or not np.isfinite(r["ci_low"]):
            return f"{r['mean']:.3g}"
        return f"{r['mean']:.3g} [{r['ci_low']:.3g}, {r['ci_high']:.3g}]"

    def undefined(rung: str, T: Any) -> bool:
        g = idx.get((rung, "teacher_continued", "Q2", "within", "teacher_gain", T))
        return g is not None and not (g["ci_low"] is not None and np.isfinite(g["ci_low"]) and g["ci_low"] > 0)

    lines = [f"{'rung':<11} {'question':<26} {'T':>4}  {'mixture':<28} {'transformer':<28} {'controls'}"]
    flagged = False
    for rung in rungs:
        Ts = sorted({r["T"] for r in summary if r["rung"] == rung and r["metric"] == "continuation_ratio"})
        for q, v, m, label in HEADLINE:
            for T in (Ts if m == "continuation_ratio" else [None]):
                if not any(k[0] == rung and k[2] == q and k[3] == v and k[4] == m and k[5] == T for k in idx):
                    continue
                ctrl = ""
                if m == "continuation_ratio":
                    ctrl = (f"teacher cont. {cell(rung, 'teacher_continued', q, v, m, T)}; "
                            f"frozen {cell(rung, 'teacher_frozen', q, v, m, T)}; "
                            f"teacher gain {cell(rung, 'teacher_continued', q, v, 'teacher_gain', T)}")
                elif m == "kl_bits_late":
                    ctrl = f"uniform {cell(rung, 'uniform', q, v, m, T)}"
                elif m == "auc_ratio":
                    ctrl = f"uniform {cell(rung, 'uniform', q, v, m, T)}"
                mark = ""
                if m == "continuation_ratio" and undefined(rung, T):
                    mark, flagged = "*", True
                lines.append(f"{rung:<11} {label + mark:<26} {'' if T is None else T:>4}  {cell(rung, 'mixture', q, v, m, T):<28} "
                             f"{cell(rung, 'transformer', q, v, m, T):<28} {ctrl}")
    if flagged:
        lines.append("* the teacher's own gain from T to kT is not clearly above 0 (its interval reaches 0): "
                     "the continuation ratio is undefined there")
    return "\n".join(lines)


__all__ = ["gather", "table", "write_csv", "RESULT_COLUMNS", "SUMMARY_COLUMNS", "CURVE_COLUMNS", "COVERAGE_COLUMNS"]
