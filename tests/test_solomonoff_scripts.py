"""The mixture's scripts: --help, one-line errors with exit code 2, results written atomically
with their provenance, and the per-sequence bound asserted inside every run."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from experiments import mixture_continuation, mixture_identify, mixture_transplant


@pytest.mark.parametrize("mod", ["mixture_identify", "mixture_continuation", "mixture_transplant"])
def test_help(mod):
    r = subprocess.run([sys.executable, "-m", f"experiments.{mod}", "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "usage:" in r.stdout and "--out" in r.stdout


def test_bad_input_exits_2(tmp_path, capsys):
    out = tmp_path / "r.json"
    with pytest.raises(SystemExit) as e:
        mixture_identify.main(["--env", "darkroom", "--draws", "0", "--out", str(out)])
    assert e.value.code == 2 and "must be positive" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        mixture_identify.main(["--env", "darkroom", "--budget", "2", "--out", str(out)])
    assert e.value.code == 2 and "no program" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        mixture_continuation.main(["--T", "2", "--out", str(out)])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        mixture_transplant.main(["--episodes", "5", "--window", "10", "--out", str(out)])
    assert e.value.code == 2
    for mod in (mixture_identify, mixture_continuation, mixture_transplant):
        args = ["--env", "chain"] if mod is mixture_identify else []
        with pytest.raises(SystemExit) as e:
            mod.main(args + ["--threads", "0", "--out", str(out)])
        assert e.value.code == 2 and "--threads" in capsys.readouterr().err
    assert not out.exists()
    out.write_text("{}")
    with pytest.raises(SystemExit) as e:
        mixture_identify.main(["--env", "bandit", "--out", str(out)])
    assert e.value.code == 2 and "already exists" in capsys.readouterr().err


def test_tiny_runs_write_results_with_provenance(tmp_path):
    a, b, c = tmp_path / "id.json", tmp_path / "cont.json", tmp_path / "tp.json"
    assert mixture_identify.main(["--env", "chain", "--size", "3", "--budget", "14", "--draws", "1", "--episodes", "30",
                                  "--families", "QLearning", "--threads", "2", "--out", str(a)]) == 0
    small = ["--size", "3", "--budget", "13", "--part-budgets", "{}", "--kind-budgets", "{}",
             "--teacher", "QLearning(init=0, alpha=1/n, gamma=1/2, explore=count_bonus(1))"]
    assert mixture_continuation.main(small + ["--T", "5", "10", "--seeds", "2", "--continuations", "1", "--out", str(b)]) == 0
    assert mixture_transplant.main(small + ["--train-goals", "1", "--train-episodes", "10", "--test-goals", "1",
                                            "--episodes", "10", "--seeds", "1", "--window", "5", "--out", str(c)]) == 0
    ra, rb, rc = (json.loads(p.read_text()) for p in (a, b, c))
    for r in (ra, rb, rc):
        assert "commit" in r["run_info"] and "config" in r["run_info"]
    row = ra["rows"][0]
    assert row["bound"]["teacher_min_slack_bits"] >= 0 and row["regret_bits_final"] <= row["regret_bound_bits_final"]
    assert set(rb["per_T"]) == {"5", "10"} and all(r["T"] in (5, 10) for r in rb["rows"])
    assert set(rc["fraction_of_optimal"]) == {"imitator_reset", "imitator_carry", "fresh_teacher"}
    assert not list(tmp_path.glob(".*tmp*"))
