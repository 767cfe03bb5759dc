"""The scaling sweep: levels, costs, fits and the smoke sweep end to end through the study layer."""
from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from experiments.scaling.fit import crossing, fit_line, public
from experiments.scaling.presets import PRESETS, base_rungs, preset, scaled_rung
from experiments.scaling.run import COLUMNS, METRICS, model_cost
from theory import compute as TC

REPO = Path(__file__).resolve().parents[1]


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "experiments.scaling", *args], cwd=REPO, capture_output=True,
                          text=True, env=env)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# ---- presets and costs -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_spans_two_ooms_with_five_levels_and_three_seeds(name):
    p = preset(name)
    assert len(p.levels) >= 5 and p.train_seeds >= 3
    for r in base_rungs(p):
        flops = [model_cost(scaled_rung(r, lv))["train_flops"] for lv in p.levels]
        assert all(b > a for a, b in zip(flops, flops[1:])), (r.name, flops)
        assert math.log10(flops[-1] / flops[0]) >= 2.0
        assert r.Ts == r.Ts_beyond  # within and beyond measured at the same T


def test_model_cost_is_the_theory_count_and_scaling_leaves_the_rest_alone():
    p = preset("default")
    r = base_rungs(p)[2]
    for lv in p.levels:
        s = scaled_rung(r, lv)
        m = s.transformer.model
        c = model_cost(s)
        assert c["params"] == TC.ad_transformer_params(m["n_layer"], m["d_model"], 5, m["obs_encoder"])
        assert c["flops_per_token"] == pytest.approx(
            TC.ad_forward_flops_per_token(m["n_layer"], m["d_model"], m["context"], 5, m["obs_encoder"]), rel=1e-12)
        assert c["train_flops"] == pytest.approx(3 * c["flops_per_token"] * c["train_tokens"], rel=1e-12)
        # only the model's shape and the number of updates change
        assert s.transformer.train["batch_size"] == r.transformer.train["batch_size"]
        assert s.transformer.model["context"] == r.transformer.model["context"]
        assert (s.history_episodes, s.split, s.teacher) == (r.history_episodes, r.split, r.teacher)
    top = scaled_rung(r, p.levels[-1])
    assert top.transformer.model == r.transformer.model and top.transformer.train == r.transformer.train


# ---- the fit -------------------------------------------------------------------------------------------
def test_fit_recovers_a_known_line_and_extrapolates_inside_its_interval():
    rng = np.random.default_rng(0)
    x = np.repeat(np.linspace(9, 12, 5), 20)
    y = -0.8 + 0.1 * x + rng.normal(0, 0.02, x.size)
    f = fit_line(x, y, resamples=1000)
    assert abs(f["slope"] - 0.1) < 0.01 and abs(f["intercept"] + 0.8) < 0.1
    assert f["slope_ci"][0] < f["slope"] < f["slope_ci"][1] and f["intercept_ci"][0] < f["intercept"] < f["intercept_ci"][1]
    assert f["slope_ci"][1] - f["slope_ci"][0] < 0.02
    c = crossing(f, 0.5)
    assert c["warranted"] and c["log10_compute_ci"][0] < c["log10_compute"] < c["log10_compute_ci"][1]
    assert abs(c["log10_compute"] - 13.0) < 0.5          # -0.8 + 0.1 x = 0.5 at x = 13
    assert "_replicates" not in public(f)


def test_a_crossing_far_past_the_data_is_not_stated():
    x = np.repeat(np.linspace(9, 12, 5), 20)
    y = 0.001 * x + np.random.default_rng(2).normal(0, 0.0002, x.size)  # rising, surely, but 0.5 is ~480 OOMs away
    f = fit_line(x, y, resamples=500)
    assert f["slope_ci"][0] > 0
    c = crossing(f, 0.5)
    assert not c["warranted"] and "too far past the data" in c["statement"] and "log10_compute" not in c


def test_flat_or_falling_fit_is_not_extrapolated():
    rng = np.random.default_rng(1)
    x = np.repeat(np.linspace(9, 12, 5), 3)
    for y in (rng.normal(0.2, 0.05, x.size), 0.5 - 0.05 * x + rng.normal(0, 0.01, x.size)):
        c = crossing(fit_line(x, y, resamples=500), 0.9)
        assert not c["warranted"] and "no extrapolation is warranted" in c["statement"]
        assert "log10_compute" not in c


# ---- the smoke sweep, end to end -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def smoke_sweep(tmp_path_factory):
    root = tmp_path_factory.mktemp("scaling")
    env = {**os.environ, "HYPOSPACE_CACHE": str(root / "cache")}
    r = _cli("--preset", "smoke", "--out", str(root / "sweep"), "--workers", "1", "--no-progress", env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    return root / "sweep", env, r.stdout


def test_smoke_sweep_writes_every_metric_at_every_level_and_seed(smoke_sweep):
    out, _, stdout = smoke_sweep
    rows = _rows(out / "scaling.csv")
    assert list(rows[0]) == list(COLUMNS)
    p = preset("smoke")
    levels = sorted({(float(r["train_flops"]), int(r["params"])) for r in rows})
    assert len(levels) == len(p.levels)
    # training compute and parameters grow together with the level, over >= 2 OOMs
    assert [pa for _, pa in levels] == sorted(pa for _, pa in levels)
    assert math.log10(levels[-1][0] / levels[0][0]) >= 2
    for metric in METRICS.values():
        for c, _ in levels:
            seeds = {r["seed"] for r in rows if r["metric"] == metric and float(r["train_flops"]) == c}
            assert len(seeds) == p.train_seeds, (metric, c)
    kl = [float(r["value"]) for r in rows if r["metric"] == "Q1_kl_bits_late"]
    assert min(kl) >= 0
    assert "Q2_beyond_continuation_ratio" in stdout


def test_smoke_fit_has_finite_slopes_and_the_compute_beside_it(smoke_sweep):
    out = smoke_sweep[0]
    doc = json.loads((out / "fit.json").read_text())
    assert doc["format"] == "hypospace.scaling/1"
    assert doc["provenance"]["commit"] and doc["config"]["preset"] == "smoke"
    fits = doc["fits"]["bandit5"]
    assert set(fits) == set(METRICS.values())
    for metric, f in fits.items():
        assert math.isfinite(f["slope"]) and math.isfinite(f["intercept"])
        assert f["slope_ci"][0] <= f["slope"] <= f["slope_ci"][1]
        assert f["n_points"] == 5 * 3 and f["n_levels"] == 5
        if "continuation_ratio" in metric:
            assert [c["target"] for c in f["crossings"]] == [0.5, 0.9]
            for c in f["crossings"]:
                assert c["statement"]
                if c["warranted"]:
                    assert f["slope_ci"][0] > 0 and c["log10_compute"] - f["log10_compute_range"][1] <= 3
    # more training brings the transformer's actions closer to the teacher's: KL falls with compute
    assert fits["Q1_kl_bits_late"]["slope_ci"][1] < 0
    beside = doc["compute_beside"]["bandit5"]
    mix = beside["mixture"]
    # each explicit program's own work, each value table updated once (fixed and bandit programs own one)
    assert mix["flops_per_action"] == TC.mixture_flops_per_action(
        mix["explicit_programs"], 5, mix["value_tables"] + mix["explicit_programs"] - mix["td_programs"], "bandit_mean")
    assert mix["value_tables"] <= mix["td_programs"] <= mix["explicit_programs"] <= mix["code_words"]
    assert mix["flops_per_q2_run"] == pytest.approx(mix["flops_per_action"] * beside["steps_per_q2_run"])
    assert beside["steps_per_q2_run"] == 4 * 20  # k T pulls
    assert 0 <= mix["continuation_ratio_mean"] <= 1.5
    assert beside["teacher"]["flops_per_q2_run"] == TC.tabular_teacher_flops_per_step(5, "bandit_mean") * 80


def test_smoke_sweep_resumes_to_the_same_table(smoke_sweep):
    out, env, _ = smoke_sweep
    before = (out / "scaling.csv").read_bytes()
    r = _cli("--preset", "smoke", "--out", str(out), "--workers", "1", "--no-progress", "--resume", env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (out / "scaling.csv").read_bytes() == before


# ---- the command line --------------------------------------------------------------------------------------
def test_help_shows_the_presets_levels():
    r = _cli("--help")
    assert r.returncode == 0
    for name in PRESETS:
        assert f"preset {name}:" in r.stdout
        for lv in preset(name).levels:
            assert lv.name() in r.stdout


@pytest.mark.parametrize("args, message", [
    (["--workers", "0"], "--workers must be >= 1"),
    (["--preset", "huge"], "invalid choice"),
    (["--preset", "default", "--rungs", "chain6"], "unknown rung(s) chain6 in preset default"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    r = _cli("--out", str(tmp_path / "x"), *args)
    assert r.returncode == 2
    assert message in r.stderr.strip().splitlines()[-1]  # argparse's own errors follow its usage lines
    assert not (tmp_path / "x").exists()


def test_an_existing_directory_needs_resume(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "something").write_text("")
    r = _cli("--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "already exists" in r.stderr and len(r.stderr.strip().splitlines()) == 1
