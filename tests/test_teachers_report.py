"""The teachers' report script: its regret and return figures against hand-computed references,
its JSON beside the printed table, one-line errors with exit code 2."""
from __future__ import annotations

import json

import numpy as np
import pytest

from envs.tasks import task_split
from experiments import teachers_report as TR


def test_loglog_slope_of_known_growth_rates():
    t = np.arange(1, 2001, dtype=np.float64)
    assert TR.loglog_slope(3.0 * t) == pytest.approx(1.0, abs=1e-12)
    assert TR.loglog_slope(7.0 * np.sqrt(t)) == pytest.approx(0.5, abs=1e-12)
    assert 0.1 < TR.loglog_slope(np.log(t + 1)) < 0.3  # log t: far below any power law of the others


def test_regret_is_the_summed_gap_of_the_pulled_arms():
    """Uniform pulls on a bandit with known means: the regret is the gaps of the drawn arms summed
    (recomputed here from the same draws) and close to pulls x the mean gap; a learning teacher
    pulls the best arm more and more, so its regret grows ever slower."""
    task = {"means": [0.1, 0.5, 0.9]}
    r = TR.regret_curve("uniform", task, 3000, seed=5)
    arms = np.random.default_rng(5).integers(0, 3, 3000)
    gaps = np.array([0.8, 0.4, 0.0])
    np.testing.assert_allclose(r, np.cumsum(gaps[arms]), rtol=0, atol=1e-9)
    assert r[-1] == pytest.approx(3000 * gaps.mean(), rel=0.05)
    ts = TR.regret_curve("thompson", task, 1000, seed=5)
    assert np.all(np.diff(ts) >= 0)
    assert ts[-1] - ts[499] < 0.5 * ts[499]  # the second half adds much less than the first
    assert ts[-1] < 0.1 * r[999]


def test_report_json_and_table(tmp_path, capsys):
    """A short run of both parts: the Dark Room optimum is 20 minus the goal's distance from the
    centre, the greedy flag agrees with the greedy returns, the bandit figures are the means of
    the per-bandit regrets, and the JSON carries config, seed and commit."""
    out = tmp_path / "r.json"
    assert TR.main(["--episodes", "150", "--pulls", "300", "--bandits", "3", "--seed", "2", "--no-progress", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    res = json.loads(out.read_text())
    d, b = res["darkroom"], res["bandit"]
    goals = [t["goal"] for t in task_split(TR.DARKROOM, seed=0).test]
    assert [r["goal"] for r in d["rows"]] == goals
    for r in d["rows"]:
        assert r["optimal_return"] == 20 - abs(r["goal"][0] - 4) - abs(r["goal"][1] - 4)
        assert r["greedy_optimal"] == all(g == r["optimal_return"] for g in r["greedy_returns"])
        assert r["last_100_return"] > r["first_20_return"]  # it learns within 150 episodes
    assert d["greedy_optimal_goals"] == sum(r["greedy_optimal"] for r in d["rows"])
    assert f"greedy policy optimal on {d['greedy_optimal_goals']}/16 goals" in printed
    assert set(b["teachers"]) == set(TR.BANDIT_TEACHERS)
    for name, f in b["teachers"].items():
        assert len(f["regret_each"]) == 3
        assert f["regret_mean"] == pytest.approx(np.mean(f["regret_each"]))
        assert f"{f['regret_mean']:7.1f}" in printed
    assert b["teachers"]["thompson"]["regret_mean"] < b["teachers"]["uniform"]["regret_mean"]
    info = res["run_info"]
    assert info["seed"] == 2 and info["config"]["pulls"] == 300 and info["commit"]


@pytest.mark.parametrize("argv,message", [
    (["--episodes", "99"], "--episodes must be >= 100"),
    (["--pulls", "150"], "--pulls must be >= 200"),
    (["--seed", "-1"], "--seed and --split-seed must be >= 0"),
    (["--split-seed", "-3"], "--seed and --split-seed must be >= 0"),
    (["--bandits", "0"], "--bandits must be between 1 and"),
    (["--bandits", "100000"], "--bandits must be between 1 and"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        TR.main(argv + ["--no-progress"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_existing_out_is_refused(tmp_path, capsys):
    out = tmp_path / "r.json"
    out.write_text("{}")
    with pytest.raises(SystemExit) as e:
        TR.main(["--parts", "bandit", "--out", str(out)])
    assert e.value.code == 2 and "already exists" in capsys.readouterr().err
    assert out.read_text() == "{}"
