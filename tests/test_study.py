"""The study layer: streams, statistics, metric sanity on known answers, end-to-end smoke, bad input."""
from __future__ import annotations

import csv
import itertools
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from experiments.protocol import UniformRandom, score_predictions
from experiments.study.cells import Cell, plan
from experiments.study.data import RungData, stream
from experiments.study.questions import Imitators, conditioning_history, q2, value
from experiments.study.rungs import preset
from experiments.study.stats import interval, iqm
from learners.history import LearningHistory

REPO = Path(__file__).resolve().parents[1]


# ---- random streams ------------------------------------------------------------------------------
def test_no_two_tasks_or_seeds_share_a_stream():
    """Every (rung, purpose, task, seed) draws its own stream; the rung's name separates rungs."""
    seen = {}
    for rung, purpose, task, seed in itertools.product(["bandit5", "darkroom9", "chain6"], ["Q1", "Q2", "Q3", "env"],
                                                       range(16), range(6)):
        state = tuple(stream(rung, purpose, task, seed).generate_state(4))
        assert state not in seen, f"{(rung, purpose, task, seed)} shares a stream with {seen[state]}"
        seen[state] = (rung, purpose, task, seed)


def test_cell_histories_are_distinct_per_task_and_seed(tmp_path, monkeypatch):
    monkeypatch.setenv("HYPOSPACE_CACHE", str(tmp_path))
    r = preset("smoke").rungs[1]
    jobs = RungData(r, teacher_seeds=3).test_jobs()
    assert len({(j.teacher_seed, j.env_seed) for j in jobs}) == len(jobs) == 3 * r.n_test
    assert len({j.key() for j in jobs}) == len(jobs)


# ---- statistics on hand-computed cases ----------------------------------------------------------
def test_interval_of_a_mean_and_of_a_ratio():
    x = np.array([[1.0, 3.0], [1.0, 3.0], [1.0, 3.0]])      # no spread across seeds within a task
    point, lo, hi = interval("mean", x, resamples=500)
    assert point == 2.0 and lo == pytest.approx(2.0) and hi == pytest.approx(2.0)
    num = np.array([[1.0, 2.0], [3.0, 4.0]])
    den = np.array([[2.0, 2.0], [2.0, 2.0]])
    point, lo, hi = interval("ratio", num, den, resamples=2000)
    assert point == pytest.approx(10.0 / 8.0)                  # ratio of sums, not mean of ratios
    # stratified by task: seeds are resampled within each task column, so the extremes are
    # (1+2)/4 = 0.75 and (3+4)/4 = 1.75; the 95% interval lies inside them
    assert 0.75 <= lo < point < hi <= 1.75


def test_interval_with_one_seed_has_no_width():
    point, lo, hi = interval("mean", np.array([[0.5, 0.7]]))
    assert point == pytest.approx(0.6) and math.isnan(lo) and math.isnan(hi)


def test_iqm_is_the_mean_of_the_middle_half():
    assert iqm([0, 1, 2, 3, 4, 5, 6, 100]) == pytest.approx(np.mean([2, 3, 4, 5]))


def test_value_of_a_ratio_is_a_ratio_of_means():
    assert value("ratio", {"kind": "ratio", "num": [1.0, 3.0], "den": [2.0, 2.0]}) == pytest.approx(1.0)
    assert value("mean", {"kind": "mean", "values": [1.0, 3.0]}) == pytest.approx(2.0)


# ---- metrics with known answers -----------------------------------------------------------------
def test_uniform_kl_equals_its_closed_form():
    rng = np.random.default_rng(0)
    T, A = 200, 5
    p = rng.dirichlet(np.ones(A), size=T)
    a = np.array([rng.choice(A, p=row) for row in p])
    h = LearningHistory.from_arrays(obs=np.zeros(T, np.int64), action=a, reward=np.zeros(T), teacher_probs=p,
                                    terminated=np.ones(T, bool), truncated=np.zeros(T, bool))
    sc = score_predictions(UniformRandom(A).predict_history(h), h)
    closed = np.log2(A) + np.sum(p * np.log2(p), axis=1)       # KL(p || uniform) = log2 A - H(p)
    np.testing.assert_allclose(sc.kl_bits, closed, atol=1e-12)


def test_conditioning_subsampled_keeps_the_stride_and_ends_at_T():
    E, L = 30, 4
    T = E * L
    ep = np.repeat(np.arange(E), L)
    h = LearningHistory.from_arrays(obs=np.zeros(T, np.int64), action=np.zeros(T, np.int64), reward=ep.astype(float),
                                    teacher_probs=np.full((T, 2), 0.5), terminated=np.zeros(T, bool),
                                    truncated=np.tile([False] * (L - 1) + [True], E))
    c = conditioning_history(h, "subsampled", stride=4, context=12)
    kept = np.unique(np.asarray(c.reward)).astype(int)
    assert list(kept) == [21, 25, 29]                            # 3 episodes fill 12 tokens, stride 4, last = T-1
    assert conditioning_history(h, "contiguous", stride=4, context=12) is h


@pytest.fixture(scope="module")
def smoke_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def test_teacher_continued_scores_one_and_frozen_scores_near_zero(smoke_cache, monkeypatch):
    """The metric's sanity on the controls whose answer is known: the teacher continued from T
    tracks the teacher (ratio 1 within its interval); frozen at T it does not (below 0.3 where
    the teacher still improves by at least 20% of optimal)."""
    monkeypatch.setenv("HYPOSPACE_CACHE", str(smoke_cache))
    pr = preset("smoke")
    rung = next(r for r in pr.rungs if r.name == "darkroom5")
    rung.Ts, rung.n_test = (5,), 3
    data = RungData(rung, teacher_seeds=4)
    data.ensure()
    comps = {}
    for who in ("teacher_continued", "teacher_frozen"):
        num, den = [], []
        for s in range(4):
            m = q2(Imitators(data, s, 0), who, "within")
            c = m.metrics[("continuation_ratio", 5)]
            num.append(c["num"])
            den.append(c["den"])
        comps[who] = (np.array(num), np.array(den))
    num, den = comps["teacher_continued"]
    improvement = den.mean()
    assert improvement >= 0.2, f"the teacher improves by only {improvement:.2f} of optimal from T to kT"
    point, lo, hi = interval("ratio", num, den, resamples=2000)
    assert lo <= 1.0 <= hi, f"teacher continued: ratio {point:.2f} [{lo:.2f}, {hi:.2f}] excludes 1"
    fnum, fden = comps["teacher_frozen"]
    assert interval("ratio", fnum, fden, resamples=2000)[0] < 0.3


# ---- planning and bad input ---------------------------------------------------------------------
def test_plan_states_why_an_imitator_cannot_run():
    pr = preset("smoke")
    cells, coverage = plan(pr, pr.rungs)
    cannot = [c for c in coverage if c["status"] == "cannot"]
    assert cannot and all(c["reason"] for c in cannot)
    assert {c.question for c in cells} == {"teacher", "Q1", "Q2", "Q3"}
    assert {c.imitator for c in cells} >= {"mixture", "transformer"}
    ids = [c.id for c in cells]
    assert len(ids) == len(set(ids))


def _study(*args, env=None):
    return subprocess.run([sys.executable, "-m", "experiments.study", *args], cwd=REPO, capture_output=True, text=True,
                          env=env, timeout=600)


@pytest.mark.parametrize("args, message", [
    (["--rungs", "nosuchrung"], "unknown rung"),
    (["--imitators", "oracle"], "unknown imitator"),
    (["--questions", "Q9"], "unknown question"),
    (["--rungs", "darkroom5", "--T", "500"], "needs the teacher's history up to"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    out = tmp_path / "study"
    r = _study("--preset", "smoke", "--out", str(out), *args)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
    assert not out.exists()


def test_a_directory_of_another_study_is_refused(tmp_path):
    out = tmp_path / "study"
    out.mkdir()
    (out / "study.json").write_text(json.dumps({"config_key": "0" * 16, "preset": "default"}))
    r = _study("--preset", "smoke", "--out", str(out), "--resume")
    assert r.returncode == 2 and "another configuration" in r.stderr
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("not a study")
    r = _study("--preset", "smoke", "--out", str(tmp_path / "other"))
    assert r.returncode == 2 and "not a study directory" in r.stderr


def test_help_shows_the_presets_values():
    r = _study("--help")
    assert r.returncode == 0
    assert "darkroom9" in r.stdout and "conditioning subsampled" in r.stdout


def read_csv(p: Path) -> list[dict[str, str]]:
    with open(p) as f:
        return list(csv.DictReader(f))
