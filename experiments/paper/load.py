"""Read a study's output directory (study.json and its four CSVs) into plain Python values,
checking it against the study's format on the way: the paper draws from these values only and
recomputes no result."""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from learners.files import read_json

STUDY_FORMAT = "hypospace.study/"  # the major version the paper reads: "hypospace.study/1"

RESULTS_COLUMNS = ("rung", "imitator", "question", "variant", "metric", "T", "seed", "value")
SUMMARY_COLUMNS = ("rung", "imitator", "question", "variant", "metric", "T", "mean", "ci_low", "ci_high", "n", "iqm")
CURVES_COLUMNS = ("rung", "imitator", "question", "variant", "curve", "T", "seed", "x", "y")
COVERAGE_COLUMNS = ("rung", "imitator", "question", "variant", "status", "reason", "cost_estimate")
COVERAGE_STATUSES = ("done", "missing", "cannot")
COMPLEXITY_KEYS = ("log2_hypotheses", "states_x_actions", "teacher_params", "teacher_steps_to_90")


class StudyError(ValueError):
    """The directory is not a study the paper can read (one line, naming the file and the fault)."""


@dataclass(frozen=True)
class Interval:
    """One summary.csv row: a mean with its 95% interval over ``n`` values."""
    mean: float
    ci_low: float
    ci_high: float
    n: int
    iqm: float | None


@dataclass(frozen=True)
class Coverage:
    """One coverage.csv row: whether a (rung, imitator, question, variant) was measured, and why not."""
    status: str
    reason: str
    cost_estimate: str


@dataclass
class Study:
    """A study's results as the paper uses them.

    ``summary`` maps (rung, imitator, question, variant, metric, T) to its interval; ``curves`` maps
    (rung, imitator, question, variant, curve, T) to {seed: (x, y)} sorted by x; ``coverage`` maps
    (rung, imitator, question, variant) to its status. T is a float, or None where it does not apply."""
    path: Path
    meta: dict[str, Any]
    rungs: list[dict[str, Any]]
    seeds: list[int]
    summary: dict[tuple, Interval] = field(default_factory=dict)
    curves: dict[tuple, dict[int, tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)
    coverage: dict[tuple, Coverage] = field(default_factory=dict)

    @property
    def rung_names(self) -> list[str]:
        return [r["name"] for r in self.rungs]

    def rung(self, name: str) -> dict[str, Any]:
        return next(r for r in self.rungs if r["name"] == name)

    def label(self, rung: str) -> str:
        return str(self.rung(rung).get("label") or rung)

    @property
    def provenance(self) -> dict[str, Any]:
        return self.meta.get("provenance") or {}

    def not_done(self, rung: str, imitator: str, question: str, variant: str) -> Coverage | None:
        """The coverage row when the cell was not measured (missing or cannot), else None."""
        c = self.coverage.get((rung, imitator, question, variant))
        return c if c is not None and c.status != "done" else None


def _float(text: str, where: str, *, allow_empty: bool = False) -> float | None:
    if text.strip() == "":
        if allow_empty:
            return None
        raise StudyError(f"{where}: empty number")
    try:
        return float(text)
    except ValueError:
        raise StudyError(f"{where}: {text!r} is not a number") from None


def _T(text: str, where: str) -> float | None:
    return _float(text, where, allow_empty=True)


def _rows(path: Path, required: tuple[str, ...]):
    """(line number, row dict) for each data row of a CSV that has every required column."""
    if not path.is_file():
        raise StudyError(f"{path.name} is missing from the study directory")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        absent = [c for c in required if c not in header]
        if absent:
            raise StudyError(f"{path.name} lacks column(s) {', '.join(absent)} (has: {', '.join(header) or 'no header'})")
        for i, row in enumerate(reader, start=2):
            if None in row or any(row[c] is None for c in required):
                raise StudyError(f"{path.name} line {i}: wrong number of fields")
            yield i, row


def _read_meta(directory: Path) -> dict[str, Any]:
    meta = read_json(directory / "study.json", StudyError, missing=f"{directory} is not a study directory (no study.json)")
    if not isinstance(meta, dict) or not str(meta.get("format", "")).startswith(STUDY_FORMAT):
        raise StudyError(f"study.json is not a study (format {meta.get('format') if isinstance(meta, dict) else None!r}, "
                         f"expected {STUDY_FORMAT}1)")
    for key, kind in (("rungs", list), ("imitators", list), ("questions", list), ("seeds", list), ("provenance", dict)):
        if not isinstance(meta.get(key), kind):
            raise StudyError(f"study.json lacks {key!r} (a {kind.__name__})")
    for i, r in enumerate(meta["rungs"]):
        if not isinstance(r, dict) or not isinstance(r.get("name"), str):
            raise StudyError(f"study.json rungs[{i}] has no name")
        if not isinstance(r.get("complexity"), dict):
            raise StudyError(f"study.json rung {r['name']!r} has no complexity")
    return meta


def load_study(directory: str | Path) -> Study:
    """Read and check a study directory; ``StudyError`` on anything the paper cannot use."""
    d = Path(directory)
    if not d.is_dir():
        raise StudyError(f"{d} is not a directory")
    meta = _read_meta(d)
    study = Study(path=d, meta=meta, rungs=list(meta["rungs"]), seeds=[int(s) for s in meta["seeds"]])
    known = set(study.rung_names)

    def rung_of(row: dict[str, str], where: str) -> str:
        if row["rung"] not in known:
            raise StudyError(f"{where}: rung {row['rung']!r} is not in study.json")
        return row["rung"]

    # results.csv: the paper draws from summary and curves, but a study without its tidy table is incomplete.
    for _ in _rows(d / "results.csv", RESULTS_COLUMNS):
        break

    for i, row in _rows(d / "summary.csv", SUMMARY_COLUMNS):
        w = f"summary.csv line {i}"
        key = (rung_of(row, w), row["imitator"], row["question"], row["variant"], row["metric"], _T(row["T"], w))
        if key in study.summary:
            raise StudyError(f"{w}: duplicate row for {key}")
        n = _float(row["n"], w)
        # an empty mean or bound is a value the study could not define (a ratio over a zero
        # denominator; no interval from a single seed): NaN, shown as n/a and never drawn
        mean, lo, hi = (_float(row[c], w, allow_empty=True) for c in ("mean", "ci_low", "ci_high"))
        study.summary[key] = Interval(*(math.nan if v is None else v for v in (mean, lo, hi)),
                                      int(n) if math.isfinite(n) else 0, _float(row["iqm"], w, allow_empty=True))

    points: dict[tuple, dict[int, list[tuple[float, float]]]] = {}
    for i, row in _rows(d / "curves.csv", CURVES_COLUMNS):
        w = f"curves.csv line {i}"
        key = (rung_of(row, w), row["imitator"], row["question"], row["variant"], row["curve"], _T(row["T"], w))
        seed = _float(row["seed"], w)
        points.setdefault(key, {}).setdefault(int(seed), []).append((_float(row["x"], w), _float(row["y"], w)))
    for key, by_seed in points.items():
        study.curves[key] = {}
        for seed, xy in sorted(by_seed.items()):
            a = np.array(sorted(xy), dtype=float)
            study.curves[key][seed] = (a[:, 0], a[:, 1])

    for i, row in _rows(d / "coverage.csv", COVERAGE_COLUMNS):
        w = f"coverage.csv line {i}"
        if row["status"] not in COVERAGE_STATUSES:
            raise StudyError(f"{w}: status {row['status']!r} is not one of {', '.join(COVERAGE_STATUSES)}")
        study.coverage[(rung_of(row, w), row["imitator"], row["question"], row["variant"])] = Coverage(
            row["status"], row["reason"].strip(), row["cost_estimate"].strip())
    return study


__all__ = ["Study", "Interval", "Coverage", "StudyError", "load_study", "COMPLEXITY_KEYS",
           "RESULTS_COLUMNS", "SUMMARY_COLUMNS", "CURVES_COLUMNS", "COVERAGE_COLUMNS"]
