"""The mixture's identification script: --help, one-line errors with exit code 2, results written
atomically with their provenance, and the per-sequence bound asserted inside every run. (Its
continuation and transplant measurements are the study's: tests/test_study.py.)"""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from experiments import mixture_identify


@pytest.mark.parametrize("mod", ["mixture_identify"])
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
        mixture_identify.main(["--env", "chain", "--threads", "0", "--out", str(out)])
    assert e.value.code == 2 and "--threads" in capsys.readouterr().err
    assert not out.exists()
    out.write_text("{}")
    with pytest.raises(SystemExit) as e:
        mixture_identify.main(["--env", "bandit", "--out", str(out)])
    assert e.value.code == 2 and "already exists" in capsys.readouterr().err


def test_tiny_runs_write_results_with_provenance(tmp_path):
    a = tmp_path / "id.json"
    assert mixture_identify.main(["--env", "chain", "--size", "3", "--budget", "14", "--draws", "1", "--episodes", "30",
                                  "--families", "QLearning", "--threads", "2", "--out", str(a)]) == 0
    ra = json.loads(a.read_text())
    assert "commit" in ra["run_info"] and "config" in ra["run_info"]
    row = ra["rows"][0]
    assert row["bound"]["teacher_min_slack_bits"] >= 0 and row["regret_bits_final"] <= row["regret_bound_bits_final"]
    assert not list(tmp_path.glob(".*tmp*"))
