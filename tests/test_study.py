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
from experiments.study.cells import plan
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
    jobs = RungData(r, teacher_seeds=3).scored_jobs()
    assert len({(j.teacher_seed, j.env_seed) for j in jobs}) == len(jobs) == 3 * r.n_test
    assert len({j.key() for j in jobs}) == len(jobs)


def test_validation_scoring_uses_validation_tasks_and_its_own_streams(tmp_path, monkeypatch):
    """--score-on val: other tasks, other histories, other streams than the test cells."""
    monkeypatch.setenv("HYPOSPACE_CACHE", str(tmp_path))
    r = preset("default").rungs[2]  # darkroom9: 12 validation goals, 16 test goals
    test, val = RungData(r, teacher_seeds=2), RungData(r, teacher_seeds=2, scored="val")
    assert val.tasks == test.split.val and test.tasks == test.split.test
    assert not {json.dumps(t, sort_keys=True) for t in val.tasks} & {json.dumps(t, sort_keys=True) for t in test.tasks}
    assert not {j.key() for j in val.scored_jobs()} & {j.key() for j in test.scored_jobs()}
    assert all(val.seed("Q2", 50, j, 0) != test.seed("Q2", 50, j, 0) for j in range(12))
    with pytest.raises(ValueError):
        RungData(r, teacher_seeds=2, scored="train")


def test_a_models_cache_key_holds_what_decides_its_weights_only(tmp_path, monkeypatch):
    """Evaluation settings and bookkeeping never retrain a model; its data and optimisation do."""
    from experiments.study.imitators import ModelJob, model_run_dir

    monkeypatch.setenv("HYPOSPACE_CACHE", str(tmp_path))
    job = ModelJob("darkroom5", "within", None, 0)

    def key(edit) -> str:
        r = preset("default").rungs[1]
        edit(r)
        return model_run_dir(RungData(r, teacher_seeds=2), job).name

    base = key(lambda r: None)
    same = [lambda r: setattr(r, "Ts", (10, 20)), lambda r: setattr(r, "q3_episodes", 7),
            lambda r: setattr(r.transformer, "conditioning", "contiguous"),
            lambda r: r.transformer.train.update(checkpoint_every=5, log_every=1)]
    assert all(key(e) == base for e in same)
    other = [lambda r: r.transformer.train.update(lr=3e-4), lambda r: r.transformer.model.update(n_layer=2),
             lambda r: setattr(r.transformer, "seeds_per_task", 2), lambda r: setattr(r, "n_val", 3)]
    assert all(key(e) != base for e in other)


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


def test_resume_may_add_or_drop_rungs_but_not_change_one():
    """A preset whose ladder changed resumes a study (its recorded cells are ones the new plan
    would compute); a changed rung, seed count or scoring does not."""
    from experiments.study.run import config_of, unlike

    p = preset("smoke")
    small = config_of(p, p.rungs[:1], plan(p, p.rungs[:1])[0])
    full = config_of(p, p.rungs, plan(p, p.rungs)[0])
    assert unlike(small, full) is None and unlike(full, small) is None
    changed = preset("smoke")
    changed.rungs[0].k = 3
    assert "rung bandit5" in unlike(full, config_of(changed, changed.rungs, plan(changed, changed.rungs)[0]))
    other = preset("smoke")
    other.train_seeds = 2
    assert "train_seeds" in unlike(full, config_of(other, other.rungs, plan(other, other.rungs)[0]))
    val = preset("smoke")
    val.score_on = "val"
    assert "score_on" in unlike(full, config_of(val, val.rungs, plan(val, val.rungs)[0]))


def test_transformer_set_changes_the_rung_and_so_its_models():
    from experiments.study.rungs import set_transformer

    r = preset("default").rungs[2]
    before = r.key()
    set_transformer(r, "train.subsample=[4,8,16]")
    set_transformer(r, "train_episodes=200")
    assert r.transformer.train["subsample"] == [4, 8, 16] and r.transformer.train_episodes == 200
    assert r.key() != before
    for bad in ("train.subsampel=[1]", "nosuch=1", "model"):
        with pytest.raises(ValueError):
            set_transformer(preset("default").rungs[2], bad)
    r = _study("--preset", "smoke", "--out", "unused", "--transformer-set", "train.nosuch=1")
    assert r.returncode == 2 and "train has no field 'nosuch'" in r.stderr


def test_default_leaves_the_13x13_and_key_to_door_rungs_to_paper_but_transplants_to_13x13():
    d, big = preset("default"), preset("paper")
    assert [r.name for r in d.rungs] == ["bandit5", "darkroom5", "darkroom9", "chain6"]
    assert {"darkroom13", "keytodoor5"} <= {r.name for r in big.rungs}
    r9 = d.target("darkroom9")
    assert r9.transplant == {"to": "darkroom13"} and d.target("darkroom13").mixture is not None


def test_a_run_stopped_before_its_cells_leaves_no_directory(tmp_path, monkeypatch):
    """Killed while recording histories or training, a run leaves nothing that --resume would refuse."""
    from experiments.study import run as run_mod

    def stop(self, fn, jobs, desc):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_mod.Executor, "map", stop)
    p = preset("smoke")
    out = tmp_path / "study"
    with pytest.raises(KeyboardInterrupt):
        run_mod.run_study(p, p.rungs[:1], out, workers=1, progress=False)
    assert not out.exists()


def test_a_killed_study_leaves_no_worker_running(tmp_path):
    """Workers die with the study: an orphan would train beside the job a --resume starts again."""
    import os
    import signal
    import time

    script = tmp_path / "pool.py"
    script.write_text(
        "import os, sys, time\n"
        f"sys.path.insert(0, {str(REPO)!r})\n"
        "from experiments.study.executor import Executor\n"
        "def job(i):\n    time.sleep(120)\n"
        "if __name__ == '__main__':\n"
        "    with Executor('local', workers=2, progress=False) as ex:\n"
        "        ex.map(job, [(1,), (2,)], 'x')\n")
    parent = subprocess.Popen([sys.executable, str(script)])

    def children() -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(parent.pid)], capture_output=True, text=True).stdout.split()
        return [int(p) for p in out]

    deadline = time.time() + 60
    while len(children()) < 3 and time.time() < deadline:  # 2 workers + the resource tracker
        time.sleep(0.2)
    kids = children()
    assert len(kids) >= 2, kids
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    def running(pid: int) -> bool:
        try:
            return open(f"/proc/{pid}/stat").read().split()[2] != "Z"
        except (FileNotFoundError, ProcessLookupError):
            return False

    deadline = time.time() + 30
    alive = kids
    while alive and time.time() < deadline:
        time.sleep(0.2)
        alive = [k for k in kids if running(k)]
    for k in alive:
        os.kill(k, signal.SIGKILL)
    assert not alive


def test_help_shows_the_presets_values():
    r = _study("--help")
    assert r.returncode == 0
    assert "darkroom9" in r.stdout and "conditioning subsampled" in r.stdout


def read_csv(p: Path) -> list[dict[str, str]]:
    with open(p) as f:
        return list(csv.DictReader(f))


# ---- the smoke study end to end -----------------------------------------------------------------
@pytest.fixture(scope="module")
def smoke_study(tmp_path_factory):
    """The whole smoke preset (every question, both imitators, 3 rungs) in a fresh cache."""
    root = tmp_path_factory.mktemp("smoke")
    env = {**__import__("os").environ, "HYPOSPACE_CACHE": str(root / "cache")}
    r = _study("--preset", "smoke", "--out", str(root / "study"), "--no-progress", env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    return root / "study", r.stdout


def _summary(out: Path) -> dict[tuple, dict[str, str]]:
    return {(r["rung"], r["imitator"], r["question"], r["variant"], r["metric"], r["T"]): r
            for r in read_csv(out / "summary.csv")}


def test_smoke_study_measures_every_question_for_both_imitators(smoke_study):
    out, stdout = smoke_study
    cov = read_csv(out / "coverage.csv")
    assert not [c for c in cov if c["status"] == "missing"]
    assert all(c["reason"] for c in cov if c["status"] == "cannot")
    s = _summary(out)
    rungs = [r["name"] for r in json.loads((out / "study.json").read_text())["rungs"]]
    assert len(rungs) >= 3
    for rung in rungs:
        for im in ("mixture", "transformer"):
            assert (rung, im, "Q1", "now", "kl_bits_late", "") in s
            assert (rung, im, "Q3", "heldout", "auc_ratio", "") in s
            assert any(k[:5] == (rung, im, "Q2", "within", "continuation_ratio") for k in s)
            assert any(k[:5] == (rung, im, "Q2", "beyond", "continuation_ratio") for k in s)
        # the fresh teacher is its own reference: its AUC ratio is exactly 1
        assert float(s[(rung, "teacher_fresh", "Q3", "heldout", "auc_ratio", "")]["mean"]) == pytest.approx(1.0)
        # a mixture that watched the (in-class) teacher predicts it better than uniform guessing
        assert float(s[(rung, "mixture", "Q1", "now", "kl_bits_late", "")]["mean"]) < \
            float(s[(rung, "uniform", "Q1", "now", "kl_bits_late", "")]["mean"])
        # the mixture's two Q2 variants coincide (it has no training)
        for k, row in s.items():
            if k[:4] == (rung, "mixture", "Q2", "beyond"):
                assert row["mean"] == s[(rung, "mixture", "Q2", "within", *k[4:])]["mean"]
    # Q3 transplant (Dark Room 5x5 -> chain): the mixture's beliefs travel; the transformer says why it cannot
    assert ("darkroom5", "mixture", "Q3", "transplant", "auc_ratio", "") in s
    assert float(s[("darkroom5", "teacher_fresh", "Q3", "transplant", "auc_ratio", "")]["mean"]) == pytest.approx(1.0)
    tf_cov = [c for c in cov if c["rung"] == "darkroom5" and c["imitator"] == "transformer" and c["variant"] == "transplant"]
    assert tf_cov and tf_cov[0]["status"] == "cannot" and "encoder" in tf_cov[0]["reason"]
    rec = json.loads(next((out / "cells").glob("darkroom5__mixture__Q3__transplant__*.json")).read_text())
    assert rec["info"]["transplant"]["to"] == "chain6" and min(rec["info"]["transplant"]["carried_mass"]) > 0.9
    results = read_csv(out / "results.csv")
    assert list(results[0]) == ["rung", "imitator", "question", "variant", "metric", "T", "seed", "value"]
    assert list(read_csv(out / "summary.csv")[0]) == ["rung", "imitator", "question", "variant", "metric", "T", "mean",
                                                       "ci_low", "ci_high", "n", "iqm"]
    rec = json.loads(next((out / "cells").glob("darkroom5__transformer__Q2__within__*.json")).read_text())
    assert rec["provenance"]["commit"] and rec["settings"]["conditioning"] in ("subsampled", "contiguous")
    assert rec["settings"]["slide"] == 0.5
    assert "Q2 ratio within" in stdout and "mixture" in stdout


def test_smoke_study_resume_skips_done_cells_and_gives_the_same_tables(smoke_study, tmp_path):
    out, _ = smoke_study
    before = (out / "summary.csv").read_bytes()
    victim = next((out / "cells").glob("chain6__uniform__Q2__*.json"))
    victim.unlink()
    env = {**__import__("os").environ, "HYPOSPACE_CACHE": str(out.parent / "cache")}
    r = _study("--preset", "smoke", "--out", str(out), "--resume", "--no-progress", env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert victim.exists()
    assert (out / "summary.csv").read_bytes() == before


def test_tables_only_tables_a_killed_study_and_lists_its_unfinished_cells_as_missing(smoke_study, tmp_path):
    """--tables-only runs nothing (no cache is even given) and rewrites the tables from the cells
    present: a removed cell's rows leave results.csv and it is listed as missing in coverage.csv."""
    import shutil
    out, _ = smoke_study
    killed = tmp_path / "killed"
    shutil.copytree(out, killed)
    for f in ("results.csv", "summary.csv", "coverage.csv", "curves.csv"):
        (killed / f).unlink()
    victims = sorted((killed / "cells").glob("chain6__uniform__Q2__*.json"))
    assert victims
    for v in victims:
        v.unlink()
    env = {**__import__("os").environ, "HYPOSPACE_CACHE": str(tmp_path / "no-cache")}
    r = _study("--preset", "smoke", "--out", str(killed), "--tables-only", "--no-progress", env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert not (tmp_path / "no-cache").exists()
    assert not any((killed / "cells").glob("chain6__uniform__Q2__*.json"))
    results = read_csv(killed / "results.csv")
    assert not any(x["rung"] == "chain6" and x["imitator"] == "uniform" and x["question"] == "Q2" for x in results)
    assert any(x["rung"] == "chain6" and x["imitator"] == "mixture" for x in results)
    cov = [c for c in read_csv(killed / "coverage.csv") if c["rung"] == "chain6" and c["imitator"] == "uniform"
           and c["question"] == "Q2"]
    assert cov and all(c["status"] == "missing" for c in cov)
    r = _study("--preset", "smoke", "--out", str(tmp_path / "none"), "--tables-only", "--no-progress", env=env)
    assert r.returncode == 2 and "holds no study" in r.stderr


def test_a_validation_run_reuses_the_trained_models_and_scores_validation_tasks(smoke_study, tmp_path):
    """--score-on val --conditioning contiguous: the same models (nothing retrained), other tasks."""
    out, _ = smoke_study
    cache = out.parent / "cache"
    models = sorted(p.name for p in (cache / "models").iterdir())
    env = {**__import__("os").environ, "HYPOSPACE_CACHE": str(cache)}
    val = tmp_path / "val"
    r = _study("--preset", "smoke", "--rungs", "darkroom5", "--imitators", "transformer", "--questions", "Q2",
               "--score-on", "val", "--conditioning", "contiguous", "--out", str(val), "--no-progress", env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "VALIDATION" in r.stdout
    assert sorted(p.name for p in (cache / "models").iterdir()) == models
    rec = json.loads(next((val / "cells").glob("darkroom5__transformer__Q2__within__*.json")).read_text())
    test_rec = json.loads(next((out / "cells").glob("darkroom5__transformer__Q2__within__*.json")).read_text())
    assert rec["scored"] == "val" and rec["settings"]["conditioning"] == "contiguous"
    assert rec["tasks"] != test_rec["tasks"]
    study = json.loads((val / "study.json").read_text())
    assert study["config"]["score_on"] == "val" and study["config"]["conditioning"] == "contiguous"


@pytest.mark.slow
def test_local_and_ray_executors_give_identical_results(smoke_study, tmp_path):
    pytest.importorskip("ray", reason="the ray extra is not installed (pip install -e '.[ray]')")
    out, _ = smoke_study
    env = {**__import__("os").environ, "HYPOSPACE_CACHE": str(out.parent / "cache")}
    r = _study("--preset", "smoke", "--out", str(tmp_path / "ray"), "--executor", "ray", "--no-progress", env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    for name in ("results.csv", "summary.csv", "curves.csv", "coverage.csv"):
        assert (tmp_path / "ray" / name).read_bytes() == (out / name).read_bytes(), name


def test_only_the_transformers_are_measured_under_every_training_seed():
    """A training seed changes a transformer and nothing else: the mixture and the controls are
    measured once per teacher seed, never as copies that would count as extra seeds."""
    p = preset("default")
    cells, _ = plan(p, p.rungs[:1], None, None, None)
    by_imitator: dict[str, set[int]] = {}
    for c in cells:
        by_imitator.setdefault(c.imitator, set()).add(c.seed)
    for im, seeds in by_imitator.items():
        if im in ("transformer", "transformer_empty", "expert_distillation"):
            assert seeds == set(p.seeds), im
        else:
            assert sorted(p.seed_parts(s)[0] for s in seeds) == list(range(p.teacher_seeds)), im
            assert all(p.seed_parts(s)[1] == 0 for s in seeds), im
    # a --seeds selection keeps the rule: an untrained imitator under a training seed other than 0 is not run
    cells, _ = plan(p, p.rungs[:1], {"mixture", "transformer"}, {"Q1"}, [1, 3])
    assert sorted((c.imitator, c.seed) for c in cells if c.question == "Q1") == [("mixture", 3), ("transformer", 1),
                                                                                 ("transformer", 3)]
