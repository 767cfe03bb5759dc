"""Run the scaling sweep: one study per compute level, gathered into scaling.csv and fit.json.

Every level is an ordinary study (``experiments.study.run.run_study``) of the transformer alone
on scaled copies of the rungs, in ``DIR/levels/<level>/``; the mixture, which has no training
compute, is measured once (Q2) in ``DIR/mixture/``. Each study is resumable on its own, so a
killed sweep continues with ``--resume``. From the studies' ``results.csv`` files:

* ``DIR/scaling.csv`` -- ``rung, params, train_flops, flops_per_token, metric, seed, value``: one
  row per (rung, level, training seed, metric); ``params`` the model's non-embedding parameters,
  ``train_flops`` the FLOPs of training one model (updates x batch x context x the model's own
  training FLOPs per token), ``flops_per_token`` its forward FLOPs per token;
* ``DIR/fit.json`` -- per rung and metric the line against log10 ``train_flops`` with bootstrap
  intervals (``fit``), for the continuation ratios the compute at which the line reaches 0.5 and
  0.9 or the statement that no extrapolation is warranted; beside them the mixture's exact cost
  per predicted action and per Q2 run (``theory.compute``, from its enumerated programs and
  shared tables) with its own continuation ratio, and the teacher's compute over the same run;
  the sweep's configuration and provenance.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

import envs
from envs.tasks import task_split
from experiments.scaling.fit import fits
from experiments.scaling.presets import ScalingPreset, base_rungs, scaled_rung, study_for
from experiments.study.rungs import Rung
from experiments.study.run import run_study
from experiments.study.results import write_csv
from learners.files import write_json_atomic
from learners.provenance import run_info
from learners.solomonoff import Grammar, enumerate_programs
from learners.solomonoff.hypotheses import td_arrays_from_space
from learners.solomonoff.probe import profile_for_env
from learners.transformer.model import ADTransformer, ModelConfig
from learners.transformer.presets import env_model_fields
from theory import compute as TC

FORMAT = "hypospace.scaling/1"
COLUMNS = ("rung", "params", "train_flops", "flops_per_token", "metric", "seed", "value")
#: (question, variant, study metric) -> the sweep's metric name
METRICS = {("Q2", "beyond", "continuation_ratio"): "Q2_beyond_continuation_ratio",
           ("Q2", "within", "continuation_ratio"): "Q2_within_continuation_ratio",
           ("Q3", "heldout", "auc_ratio"): "Q3_heldout_auc_ratio",
           ("Q1", "now", "kl_bits_late"): "Q1_kl_bits_late"}
CONTINUATION = ("Q2_beyond_continuation_ratio", "Q2_within_continuation_ratio")
TARGETS = (0.5, 0.9)


class ScalingError(ValueError):
    """A sweep that cannot run as asked (one line, exit code 2)."""


# ---- sizes and costs -----------------------------------------------------------------------------
def model_cost(rung: Rung) -> dict[str, float]:
    """Parameters and FLOPs of the rung's transformer, from the model the study trains."""
    tf = rung.transformer
    model = ADTransformer(ModelConfig(**{**env_model_fields(rung.env_id, rung.split), **tf.model}))
    ctx = int(tf.model["context"])
    train_per_token = float(model.flops_per_token(ctx))
    tokens = int(tf.train["steps"]) * int(tf.train["batch_size"]) * ctx
    return {"params": int(model.n_params()), "flops_per_token": train_per_token / 3.0,
            "train_flops": train_per_token * tokens, "train_tokens": tokens}


def _first_task(rung: Rung) -> dict[str, Any]:
    return task_split(rung.env_id, seed=0, **rung.split).train[0]


def episode_steps(rung: Rung) -> int:
    """Steps per episode (a bandit episode is one pull)."""
    env = envs.make(rung.env_id, **_first_task(rung))
    try:
        n = getattr(env.unwrapped, "episode_len", None) or (env.spec.max_episode_steps if env.spec else None)
        return int(n or 1)
    finally:
        env.close()


def teacher_rule(program: str) -> str:
    """The tabular rule whose per-step cost stands for the teacher's (Thompson's Beta update is a
    count update, costed as the sample-average bandit rule)."""
    for prefix, rule in (("ExpectedSARSA", "expected_sarsa"), ("SARSA", "sarsa"), ("QLearning", "q_learning")):
        if program.startswith(prefix):
            return rule
    return "bandit_mean"


def compute_beside(rung: Rung) -> dict[str, Any]:
    """The mixture's exact cost and the teacher's over one Q2 run (k T episodes: conditioning on
    the first T, acting to k T), from ``theory.compute``."""
    T = int(rung.Ts_beyond[0])
    steps = rung.k * T * episode_steps(rung)
    A = int(env_model_fields(rung.env_id, rung.split)["n_actions"])
    rule = teacher_rule(rung.teacher)
    teacher = float(TC.tabular_teacher_flops_per_step(A, rule))
    out: dict[str, Any] = {"T": T, "k": rung.k, "steps_per_q2_run": steps,
                           "teacher": {"rule": rule, "flops_per_step": teacher, "flops_per_q2_run": teacher * steps}}
    if rung.mixture is None:
        out["mixture"] = {"cannot": rung.mixture_cannot or "no mixture on this rung"}
        return out
    prof = profile_for_env(rung.env_id, **_first_task(rung))
    space = enumerate_programs(Grammar(prof.n_states, prof.n_actions, bandit=prof.bandit), rung.mixture.max_bits,
                               part_budgets=rung.mixture.part_budgets, kind_budgets=rung.mixture.kind_budgets)
    n_tables = int(td_arrays_from_space(space, np.arange(space.n_td))[0]["init"].size) if space.n_td else 0
    explicit = space.n_explicit()
    per_action = float(TC.mixture_flops_per_action(explicit, A, n_tables + (explicit - space.n_td), teacher_rule(rung.teacher)))
    out["mixture"] = {"max_bits": rung.mixture.max_bits, "code_words": int(space.n_code_words),
                      "explicit_programs": int(explicit), "td_programs": int(space.n_td), "value_tables": n_tables,
                      "closed_form_families": len(space.cyclic) + len(space.reactive),
                      "flops_per_action": per_action, "flops_per_q2_run": per_action * steps,
                      "note": "before behavioural dedup (which only merges programs): an upper bound on the "
                              "explicit work; closed-form families add O(L A) or O(S A) each per step"}
    return out


# ---- reading the studies ---------------------------------------------------------------------------
def read_results(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def level_rows(results: list[dict[str, str]], rung: Rung, cost: dict[str, float]) -> list[dict[str, Any]]:
    """The sweep's rows of one rung at one level from its study's results."""
    T = str(int(rung.Ts_beyond[0]))
    out = []
    for r in results:
        if r["rung"] != rung.name or r["imitator"] != "transformer":
            continue
        name = METRICS.get((r["question"], r["variant"], r["metric"]))
        if name is None or (r["question"] == "Q2" and r["T"] != T) or r["value"] == "":
            continue
        out.append({"rung": rung.name, "params": cost["params"], "train_flops": cost["train_flops"],
                    "flops_per_token": cost["flops_per_token"], "metric": name, "seed": int(r["seed"]),
                    "value": float(r["value"])})
    return out


def mixture_ratio(results: list[dict[str, str]], rung: Rung) -> dict[str, Any]:
    T = str(int(rung.Ts_beyond[0]))
    vals = [float(r["value"]) for r in results if r["rung"] == rung.name and r["imitator"] == "mixture"
            and r["question"] == "Q2" and r["variant"] == "within" and r["metric"] == "continuation_ratio"
            and r["T"] == T and r["value"] != ""]
    return {"continuation_ratio_mean": float(np.mean(vals)) if vals else None,
            "continuation_ratio_seeds": vals}


# ---- the sweep -------------------------------------------------------------------------------------
def run_scaling(p: ScalingPreset, out: Path, *, resume: bool = False, executor: str = "local", workers: int = 2,
                progress: bool = True, command: str = "") -> dict[str, Any]:
    if out.exists() and any(out.iterdir()) and not resume:
        raise ScalingError(f"--out {out} already exists (add --resume to continue that sweep, or choose a new path)")
    study = study_for(p)
    rungs = base_rungs(p)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    levels_info = []
    bar = tqdm(p.levels, desc="compute levels", unit="level", disable=not progress, dynamic_ncols=True)
    for lv in bar:
        bar.set_postfix_str(lv.name())
        scaled = [scaled_rung(r, lv) for r in rungs]
        d = out / "levels" / lv.name()
        run_study(study, scaled, d, imitators={"transformer"}, questions={"Q1", "Q2", "Q3"},
                  resume=(d / "study.json").exists(), executor=executor, workers=workers, progress=progress,
                  command=command)
        results = read_results(d / "results.csv")
        for r in scaled:
            cost = model_cost(r)
            rows += level_rows(results, r, cost)
            levels_info.append({"rung": r.name, "level": lv.name(), "n_layer": lv.n_layer, "d_model": lv.d_model,
                                "n_head": lv.n_head, "updates": int(r.transformer.train["steps"]), **cost,
                                "study_dir": str(d.relative_to(out))})
    beside = {r.name: compute_beside(r) for r in rungs}
    if p.mixture:
        d = out / "mixture"
        mixing = [r for r in rungs if r.mixture is not None]
        if mixing:
            run_study(study, mixing, d, imitators={"mixture"}, questions={"Q2"}, resume=(d / "study.json").exists(),
                      executor=executor, workers=workers, progress=progress, command=command)
            res = read_results(d / "results.csv")
            for r in mixing:
                beside[r.name]["mixture"].update(mixture_ratio(res, r))
    write_csv(out / "scaling.csv", COLUMNS, rows)
    fitted = fits(rows, p.bootstrap, CONTINUATION, TARGETS)
    for rung, info in beside.items():
        top = max((li for li in levels_info if li["rung"] == rung), key=lambda li: li["train_flops"], default=None)
        if top is not None:
            info["transformer_top_level"] = {"train_flops": top["train_flops"], "flops_per_token": top["flops_per_token"],
                                             "forward_flops_per_q2_run": top["flops_per_token"] * info["steps_per_q2_run"]}
    config = {"preset": p.name, "study_preset": p.study, "rungs": list(p.rungs),
              "levels": [vars(lv) | {"name": lv.name()} for lv in p.levels], "train_seeds": p.train_seeds,
              "teacher_seeds": p.teacher_seeds, "bootstrap": p.bootstrap, "mixture": p.mixture}
    doc = {"format": FORMAT, "config": config, "x": "log10 train_flops (FLOPs of training one model)",
           "model": "value = intercept + slope * log10(train_flops); 95% percentile intervals by a paired bootstrap "
                    "of the (level, seed) points (scipy.stats.bootstrap)",
           "levels": levels_info, "fits": fitted, "compute_beside": beside,
           "provenance": run_info(seed=0, config=config) | {"command": command}}
    write_json_atomic(out / "fit.json", doc)
    return doc


__all__ = ["run_scaling", "ScalingError", "model_cost", "compute_beside", "METRICS", "CONTINUATION", "TARGETS",
           "COLUMNS", "FORMAT"]
