"""The benchmark runner: --help, one-line errors with exit code 2 on bad values, and a small
real run of the mixture benchmark printing its figure beside the reference from the same run."""
from __future__ import annotations

import json

import pytest

from experiments.benchmarks.__main__ import available, main


def test_lists_the_benchmarks(capsys):
    assert {"atari_recording", "mixture", "transformer"} <= set(available())
    assert main(["--help"]) == 0 and "mixture" in capsys.readouterr().out


@pytest.mark.parametrize("args,msg", [(["mixture", "--repeats", "0"], "must be positive"),
                                      (["mixture", "--threads", "0"], "must be positive"),
                                      (["transformer", "--threads", "0"], "positive integers"),
                                      (["atari_recording", "--rounds", "0"], ">= 1")])
def test_bad_values_one_line_exit_2(args, msg, capsys):
    with pytest.raises(SystemExit) as e:
        main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and msg in err[0]


def test_mixture_benchmark_small_run(capsys):
    assert main(["mixture", "--json", "--size", "5", "--budget", "16", "--episodes", "5", "--loop-programs", "20",
                 "--loop-steps", "20", "--repeats", "2", "--threads", "2", "--shared-tables", "4",
                 "--shared-variants", "3"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert len(r["hypothesis_steps_per_s_each_run"]) == 2 and r["threads"] == 2
    assert r["hypothesis_steps_per_s"] > 0 and r["loop_hypothesis_steps_per_s"] > 0
    assert r["speedup_vs_loop"] == pytest.approx(r["hypothesis_steps_per_s"] / r["loop_hypothesis_steps_per_s"])
    assert r["n_programs"] > 1000 and "commit" in r["run"]
