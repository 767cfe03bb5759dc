"""Cells: (rung, imitator or control, question, variant, seed), each an independent job.

A cell reads the rung's cached histories (and trained models), measures every test task for its
seed and writes one JSON record atomically to ``DIR/cells/<id>.json``: config, seed, commit and
package versions, the per-task components of every metric (``Measured``), curves, and the rows
it contributes to ``results.csv``. A cell whose record exists is skipped on ``--resume``.

Which imitators answer which question is stated once, in ``PLAN``; where one cannot run, the
reason is in ``cannot()`` and ends up in ``coverage.csv`` — never a silent gap.
"""
from __future__ import annotations

import dataclasses
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from experiments.study.data import RungData
from experiments.study.questions import Imitators, Measured, q1, q2, q3, q3_transplant, teacher_learning, value
from experiments.study.rungs import Preset, Rung
from learners.files import write_json_atomic
from learners.solomonoff.misspecification import MisspecificationWarning
from learners.provenance import run_info

IMITATORS = ("mixture", "transformer")
CONTROLS = ("uniform", "teacher_frozen", "teacher_continued", "teacher_fresh", "expert_distillation",
            "transformer_empty", "mixture_prior")

#: (question, variant) -> the imitators and controls measured there.
PLAN: dict[tuple[str, str], tuple[str, ...]] = {
    ("teacher", "learning"): ("teacher",),
    ("Q1", "now"): ("mixture", "transformer", "expert_distillation", "uniform", "teacher_frozen", "teacher_continued"),
    ("Q2", "within"): ("mixture", "transformer", "expert_distillation", "transformer_empty", "mixture_prior",
                       "teacher_continued", "teacher_frozen", "uniform"),
    ("Q2", "beyond"): ("transformer", "transformer_empty"),
    ("Q3", "heldout"): ("mixture", "mixture_prior", "transformer", "expert_distillation", "teacher_fresh", "uniform"),
    ("Q3", "transplant"): ("mixture", "transformer", "teacher_fresh", "uniform"),
}
#: Measured once under Q2 "within" and reported under both variants: they have no training, so
#: for them "beyond" (never trained past T) is the same experiment.
UNTRAINED_Q2 = ("mixture", "mixture_prior", "teacher_continued", "teacher_frozen", "uniform")
#: The imitators a transformer training seed changes. Every other one (the mixture, the teacher's
#: controls, uniform) depends on the teacher seed only, so it is measured once per teacher seed
#: (cell seeds whose training part is 0): its cells under other training seeds would be exact
#: copies, and counting copies as seeds would narrow its intervals without new evidence.
TRAINED = ("transformer", "transformer_empty", "expert_distillation")


@dataclass(frozen=True)
class Cell:
    rung: str
    imitator: str
    question: str
    variant: str
    seed: int

    @property
    def id(self) -> str:
        return f"{self.rung}__{self.imitator}__{self.question}__{self.variant}__s{self.seed}"


def cannot(rung: Rung, imitator: str, question: str, variant: str) -> str:
    """Why ``imitator`` cannot answer (question, variant) on ``rung`` ("" when it can)."""
    uses_mixture = imitator in ("mixture", "mixture_prior")
    uses_transformer = imitator in TRAINED
    if uses_mixture and rung.mixture is None:
        return rung.mixture_cannot or "the mixture's grammar has no programs for this env"
    if uses_transformer and rung.transformer is None:
        return "no transformer preset for this rung"
    if question == "Q2" and variant == "beyond" and not rung.Ts_beyond:
        return "no Q2-beyond truncation point on this rung"
    if question == "Q3" and variant == "transplant":
        if rung.transplant is None:
            return "no rung of another kind to transplant to from this one in the ladder"
        if uses_transformer:
            return ("the transformer's observation encoder and action head are sized to this rung's spaces; a "
                    "transplant needs an encoder that reads the new task's observations (the Atari rung's frames do)")
    return ""


def plan(preset: Preset, rungs: list[Rung], imitators: set[str] | None = None,
         questions: set[str] | None = None, seeds: list[int] | None = None) -> tuple[list[Cell], list[dict[str, str]]]:
    """The cells to run and one coverage row per (rung, imitator, question, variant)."""
    cells, coverage = [], []
    for r in rungs:
        for (q, v), who in PLAN.items():
            if questions is not None and q not in questions and q != "teacher":
                continue
            for im in who:
                if imitators is not None and im not in imitators and im != "teacher":
                    continue
                why = cannot(r, im, q, v)
                coverage.append({"rung": r.name, "imitator": im, "question": q, "variant": v,
                                 "status": "cannot" if why else "planned", "reason": why,
                                 "cost_estimate": cost_estimate(r, im) if why else ""})
                if not why:
                    cells.extend(Cell(r.name, im, q, v, s) for s in cell_seeds(preset, im, seeds))
    return cells, coverage


def cell_seeds(preset: Preset, imitator: str, seeds: list[int] | None = None) -> list[int]:
    """The cell seeds ``imitator`` is measured under (of ``seeds``, default all of the preset's):
    every one for a trained imitator, one per teacher seed (training part 0) for the rest."""
    pool = list(seeds) if seeds is not None else preset.seeds
    if imitator in TRAINED:
        return pool
    return [s for s in pool if preset.seed_parts(s)[1] == 0]


def cost_estimate(rung: Rung, imitator: str) -> str:
    if imitator in ("mixture", "mixture_prior") and rung.mixture is None:
        return "see theory.compute: hypotheses x table work per predicted action"
    return ""


def _measure(cell: Cell, im: Imitators, preset: Preset) -> Measured:
    if cell.question == "Q3" and cell.variant == "transplant":
        to = (im.rung.transplant or {}).get("to")
        target = preset.target(to)
        if target is None:
            raise ValueError(f"rung {im.rung.name}: transplant target {to!r} is not a rung of preset {preset.name}")
        return q3_transplant(im, cell.imitator, target)
    if cell.question == "teacher":
        return teacher_learning(im)
    if cell.question == "Q1":
        return q1(im, cell.imitator)
    if cell.question == "Q2":
        return q2(im, cell.imitator, cell.variant)
    if cell.question == "Q3":
        return q3(im, cell.imitator)
    raise ValueError(f"unknown question {cell.question!r}")


def run_cell(cell: Cell, preset: Preset, rung: Rung, out_dir: str, command: str) -> dict[str, Any]:
    """Measure ``cell`` and write its record to ``out_dir/cells/<id>.json``; returns the record."""
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    teacher_seed, train_seed = preset.seed_parts(cell.seed)
    data = RungData(rung, preset.teacher_seeds, preset.score_on)
    im = Imitators(data, teacher_seed, train_seed, conditioning=preset.conditioning)
    with warnings.catch_warnings():
        # The mixture's misspecification check is recorded in the cell (info.misspecification);
        # one warning per task and cell would only bury the progress bar.
        warnings.simplefilter("ignore", MisspecificationWarning)
        m = _measure(cell, im, preset)
    variants = ["within", "beyond"] if (cell.question == "Q2" and cell.imitator in UNTRAINED_Q2) else [cell.variant]
    key = {"rung": cell.rung, "imitator": cell.imitator, "question": cell.question, "seed": cell.seed}
    rows, curves = [], []
    for var in variants:
        # An untrained imitator's "beyond" rows are its "within" rows at the Ts that have a beyond model.
        keep = (lambda T: T in rung.Ts_beyond) if (var == "beyond" and cell.variant == "within") else (lambda T: True)
        rows += [{**key, "variant": var, "metric": metric, "T": T, "value": value(comp["kind"], comp), **comp}
                 for (metric, T), comp in m.metrics.items() if keep(T)]
        curves += [{**key, "variant": var, "curve": name, "T": T, "x": c["x"], "y": c["y"]}
                   for (name, T), c in m.curves.items() if keep(T)]
    tf = rung.transformer
    record = {
        "cell": dataclasses.asdict(cell), "teacher_seed": teacher_seed, "train_seed": train_seed,
        "tasks": data.tasks, "scored": data.scored, "rows": rows, "curves": curves, "info": m.info,
        "settings": {"k": rung.k, "windows": {str(T): rung.window(T) for T in tuple(rung.Ts) + tuple(rung.Ts_beyond)},
                     "conditioning": None if tf is None else (preset.conditioning or tf.conditioning),
                     "slide": None if tf is None else tf.slide,
                     "horizon_beyond_training": None if tf is None else bool(rung.k * max(rung.Ts) > tf.train_episodes)},
        "seconds": time.perf_counter() - t0,
        "provenance": run_info(seed=cell.seed, config={"rung": rung.to_dict(), "preset": preset.name, "command": command}),
    }
    out = Path(out_dir) / "cells"
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / f"{cell.id}.json", record)
    return record


__all__ = ["Cell", "PLAN", "IMITATORS", "CONTROLS", "UNTRAINED_Q2", "TRAINED", "cell_seeds", "plan", "run_cell", "cannot"]
