"""Run a study: record the rungs' histories, train the transformers, run the cells, gather.

Stages, each a list of independent jobs on the executor (local pool or Ray):

1. histories — every teacher history of every selected rung (cached by config hash); then
   ``DIR/study.json`` with each rung's complexity coordinates;
2. then rung by rung:
   a. packed stores — the transformer's training data per variant (in the driver: cheap, and
      shared by the training seeds, so it is built once before they start);
   b. models — one transformer per (rung, variant, T, training seed), resumable from its
      checkpoints — beside the rung's cells that need no transformer;
   c. the rung's transformer cells;
   d. ``results.gather`` rewrites the tables (rungs still to come are listed as missing).

A cell is one (rung, imitator, question, variant, seed); a cell whose record exists is skipped,
so ``--resume`` continues a killed study where it stopped. The study's configuration (hashed) is in
``DIR/study.json``; a directory holding another configuration is refused.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

import envs

from experiments.study.cells import TRAINED, Cell, plan, run_cell
from experiments.study.data import RungData
from experiments.study.executor import Executor
from experiments.study.imitators import ModelJob, ensure_model, pack_for
from experiments.study.questions import Imitators, teacher_learning
from experiments.study.results import gather
from experiments.study.rungs import Preset, Rung
from learners.cache import cache_dir
from learners.files import write_json_atomic
from learners.provenance import run_info
from learners.solomonoff import Grammar, enumerate_programs
from learners.solomonoff.probe import profile_for_env
from learners.teachers import make_teacher
from learners.corpus import HistoryJob, ensure_histories

FORMAT = "hypospace.study/1"


class StudyError(ValueError):
    """A study that cannot run as asked (reported in one line, exit code 2)."""


# ---- jobs (top-level functions: they run in worker processes or as Ray tasks) ------------------
def record_job(job: HistoryJob) -> str:
    return str(ensure_histories([job], cache_dir())[0])


def model_job(rung: Rung, teacher_seeds: int, job: ModelJob) -> str:
    return str(ensure_model(RungData(rung, teacher_seeds), job))


def cell_job(cell: Cell, preset: Preset, rung: Rung, out: str, command: str) -> float:
    return float(run_cell(cell, preset, rung, out, command)["seconds"])


def call(fn: Any, *args: Any) -> Any:
    """``fn(*args)``: lets one executor pass carry jobs of different kinds (models and cells)."""
    return fn(*args)


def needs_model(cell: Cell) -> bool:
    return cell.imitator in TRAINED


def slow_first(cell: Cell) -> tuple:
    """The mixture's cells, then the transformer's, then the rest: the pool finishes together."""
    return (cell.imitator not in ("mixture", "mixture_prior"), "transformer" not in cell.imitator, cell.id)


# ---- the study ---------------------------------------------------------------------------------
def model_jobs(preset: Preset, rung: Rung, cells: list[Cell]) -> list[ModelJob]:
    """The transformers the selected cells need."""
    need: set[ModelJob] = set()
    for c in cells:
        if c.rung != rung.name or c.imitator not in TRAINED:
            continue
        _, train_seed = preset.seed_parts(c.seed)
        if c.imitator == "expert_distillation":
            need.add(ModelJob(rung.name, "expert", None, train_seed))
        elif c.question == "Q2" and c.variant == "beyond":
            need.update(ModelJob(rung.name, "beyond", T, train_seed) for T in rung.Ts_beyond)
        else:
            need.add(ModelJob(rung.name, "within", None, train_seed))
    return sorted(need, key=lambda j: (j.variant, -1 if j.T is None else j.T, j.train_seed))


def config_of(preset: Preset, rungs: list[Rung], cells: list[Cell]) -> dict[str, Any]:
    config = {"preset": preset.name, "rungs": [r.to_dict() for r in rungs], "teacher_seeds": preset.teacher_seeds,
              "train_seeds": preset.train_seeds, "bootstrap": preset.bootstrap,
              "cells": sorted(c.id for c in cells)}
    # The evaluation options enter the configuration only when set, so a test-scored study keeps
    # the key it had before they existed (and --resume still recognises it).
    if preset.score_on != "test":
        config["score_on"] = preset.score_on
    if preset.conditioning is not None:
        config["conditioning"] = preset.conditioning
    return config


def unlike(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """Why a study recorded with configuration ``old`` cannot be resumed as ``new`` (None: it can).
    Resuming may add or drop rungs and cells (a preset whose ladder changed): every rung the two
    share must be the same, as must the seeds, the bootstrap and what is scored, so that each
    recorded cell is one the new plan would compute."""
    for k in ("preset", "teacher_seeds", "train_seeds", "bootstrap", "score_on", "conditioning"):
        if old.get(k) != new.get(k):
            return f"its {k} is {old.get(k)!r}, not {new.get(k)!r}"
    was = {r["name"]: r for r in old.get("rungs", [])}
    for r in new.get("rungs", []):
        if r["name"] in was and was[r["name"]] != r:
            return f"its rung {r['name']} has other settings"
    return None


def config_key(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def complexity(rung: Rung, preset: Preset) -> dict[str, Any]:
    """The rung's coordinates on the complexity axis (the x of the paper's figures): log2 of the
    mixture's code words under its budget, |S|.|A|, the teacher's parameter count, and the
    teacher's steps to 90% of its final return (mean over the test tasks, teacher seed 0)."""
    data = RungData(rung, preset.teacher_seeds, preset.score_on)
    task = data.tasks[0]
    env = envs.make(rung.env_id, **task)
    opts = dict(data.teacher)
    teacher = make_teacher(opts.pop("name"), env.observation_space, env.action_space, seed=0, **opts)
    S, A = int(getattr(env.observation_space, "n", 1)), int(env.action_space.n)
    env.close()
    log2_h = None
    if rung.mixture is not None:
        # The count of code words under the budget needs only the enumeration, not the mixture.
        profile = profile_for_env(rung.env_id, **task)
        space = enumerate_programs(Grammar(profile.n_states, profile.n_actions, bandit=profile.bandit),
                                   rung.mixture.max_bits, part_budgets=rung.mixture.part_budgets,
                                   kind_budgets=rung.mixture.kind_budgets)
        log2_h = float(math.log2(max(1, space.n_code_words)))
    steps = teacher_learning(Imitators(data, 0, 0)).metrics[("steps_to_90", None)]["values"]
    return {"log2_hypotheses": log2_h, "states_x_actions": S * A,
            "teacher_params": int(sum(np.asarray(v).size for v in teacher.weights().values())),
            "teacher_steps_to_90": float(np.mean(steps))}


def run_study(preset: Preset, rungs: list[Rung], out: Path, *, imitators: set[str] | None = None,
              questions: set[str] | None = None, seeds: list[int] | None = None, resume: bool = False,
              executor: str = "local", workers: int = 2, ray_address: str | None = None, progress: bool = True,
              command: str = "", tables_only: bool = False) -> list[dict[str, Any]]:
    """Run the selected cells (skipping those recorded in ``out`` when ``resume``) and write the
    tables; ``tables_only``: run nothing, rewrite the tables from the cells ``out`` holds (a study
    killed in the middle of a rung has its finished cells tabled, the rest listed as missing)."""
    for r in rungs:
        try:
            r.check()
        except ValueError as e:
            raise StudyError(str(e)) from None
        to = (r.transplant or {}).get("to")
        target = preset.target(to)
        if r.transplant is not None and (target is None or target.mixture is None):
            raise StudyError(f"rung {r.name}: transplant target {to!r} is not a rung of preset {preset.name} "
                             "with a mixture")
    cells, coverage = plan(preset, rungs, imitators, questions, seeds)
    config = config_of(preset, rungs, cells)
    key = config_key(config)
    sj = out / "study.json"
    if out.exists() and any(out.iterdir()):
        if not sj.exists():
            raise StudyError(f"--out {out} exists and is not a study directory (choose a new path)")
        old = json.loads(sj.read_text())
        if old.get("config_key") != key:
            why = unlike(old.get("config", {}), config)
            if why is not None or not resume:
                raise StudyError(f"--out {out} holds a study of another configuration (preset {old.get('preset')!r}"
                                 f"{': ' + why if why else '; --resume continues it with rungs added or dropped'}); "
                                 "choose a new --out")
        if not resume and not tables_only:
            raise StudyError(f"--out {out} already holds this study; add --resume to continue it")
    elif tables_only:
        raise StudyError(f"--tables-only: --out {out} holds no study")
    by_name = {r.name: r for r in rungs}
    expected: dict[tuple[str, str, str, str], set[int]] = {}
    for c in cells:
        expected.setdefault((c.rung, c.imitator, c.question, c.variant), set()).add(c.seed)
    if tables_only:
        return gather(out, coverage, expected, resamples=preset.bootstrap)
    with Executor(executor, workers=workers, ray_address=ray_address, progress=progress) as ex:
        data = [RungData(r, preset.teacher_seeds, preset.score_on) for r in rungs]
        hjobs = [j for d in data for j in d.all_jobs() if not (RungData.path(j) / "manifest.json").exists()]
        ex.map(record_job, [(j,) for j in hjobs], "histories")
        rung_info = [{**r.to_dict(), "complexity": complexity(r, preset)} for r in rungs]
        # The directory appears only now, with its study.json: a run killed while recording histories
        # leaves no directory that a later --resume would refuse as "not a study".
        out.mkdir(parents=True, exist_ok=True)
        (out / "cells").mkdir(exist_ok=True)
        write_json_atomic(sj, {"format": FORMAT, "preset": preset.name, "config": config, "config_key": key,
                               "rungs": rung_info, "imitators": sorted({c.imitator for c in cells}),
                               "questions": sorted({c.question for c in cells}),
                               "seeds": sorted({c.seed for c in cells}),
                               "provenance": run_info(seed=0, config={"command": command, "preset": preset.name})
                               | {"command": command}})
        # Rung by rung, so that a long study has tables for its first rungs hours before its last
        # (a killed one too): each rung's models train beside the cells that do not need them, then
        # its transformer cells run, then the tables are rewritten (later rungs show as missing).
        for i, (r, d) in enumerate(zip(rungs, data)):
            todo = sorted((c for c in cells if c.rung == r.name and not (out / "cells" / f"{c.id}.json").exists()),
                          key=slow_first)
            if not todo:
                continue
            mjobs = model_jobs(preset, r, todo)
            for j in mjobs:
                pack_for(d, j)
            cell_args = lambda c: (cell_job, c, preset, by_name[c.rung], str(out.resolve()), command)  # noqa: E731
            first = [(model_job, r, preset.teacher_seeds, j) for j in mjobs] + \
                    [cell_args(c) for c in todo if not needs_model(c)]
            ex.map(call, first, f"{r.name}: transformers + cells")
            ex.map(call, [cell_args(c) for c in todo if needs_model(c)], f"{r.name}: transformer cells")
            if i < len(rungs) - 1:
                gather(out, coverage, expected, resamples=preset.bootstrap)
    return gather(out, coverage, expected, resamples=preset.bootstrap)


__all__ = ["run_study", "StudyError", "model_jobs", "FORMAT"]
