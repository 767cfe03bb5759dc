"""Resume that really resumes: a DQN recording on Atari (with a Breakout -> Space Invaders
transplant) killed with SIGKILL at a random moment and continued with --resume gives the same
history, snapshots and final weights as a run that was never killed; and the CLI's failures
(unknown game, missing ROM, unwritable output, full disk) are one clear line with exit code 2,
leaving any run already on disk loadable."""
from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from experiments import train_dqn
from learners import LearningHistory
from learners.checkpoint import load_state

REPO = Path(__file__).resolve().parents[1]


def atari_args(out: Path) -> list[str]:
    return ["--env", "ALE/Breakout-v5", "--switch-to", "ALE/SpaceInvaders-v5", "--switch-at", "300",
            "--steps", "500", "--preset", "smoke", "--learning-starts", "100", "--buffer-size", "250",
            "--train-every", "8", "--target-update-every", "50", "--seed", "7", "--out", str(out),
            "--checkpoint-every", "90", "--snapshot-every", "200", "--log-every", "5", "--no-progress"]


def darkroom_args(out: Path) -> list[str]:
    return ["--env", "hypospace/DarkRoom-v0", "--env-kwargs", "goal=[2,7]", "--steps", "800", "--preset", "smoke",
            "--learning-starts", "100", "--train-every", "2", "--lr", "1e-3", "--seed", "1", "--out", str(out),
            "--checkpoint-every", "150", "--snapshot-every", "300", "--no-progress"]


def assert_same_history(a: LearningHistory, b: LearningHistory) -> None:
    for k, v in a.columns().items():
        np.testing.assert_array_equal(np.asarray(v), np.asarray(b.columns()[k]), err_msg=k)
    assert a.snapshot_steps == b.snapshot_steps
    for s in a.snapshot_steps:
        wa, wb = a.weights_at(s), b.weights_at(s)
        assert wa.keys() == wb.keys()
        for k in wa:
            np.testing.assert_array_equal(wa[k], wb[k], err_msg=f"snapshot {s} {k}")


def metric_rows(path: Path, name: str) -> list[tuple[str, str]]:
    rows = [line.split(",") for line in path.read_text().splitlines()[1:]]
    return [(r[0], r[2]) for r in rows if r[1] == name]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    assert train_dqn.main(atari_args(out)) == 0
    return out


def test_sigkill_then_resume_is_bit_identical(reference, tmp_path):
    out = tmp_path / "run"
    err_path = tmp_path / "stderr.txt"      # a file, not a pipe: nothing can fill up and block the run
    with open(err_path, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "experiments.train_dqn", *atari_args(out)], cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=err)
    partial = out.with_name(out.name + ".partial")
    deadline = time.time() + 120

    def rows() -> int:  # the step of the last complete checkpoint (partial.json runs ahead of it
        try:            # while the checkpoint is being written, so read the checkpoint itself)
            return int(load_state(partial / "checkpoint", mmap=True)["recorder"]["t"])
        except Exception:  # not written yet, or caught between its two renames
            return 0

    # Wait for a checkpoint after learning started (Adam moments, a trained replay), then kill
    # at a random later step: the resume point falls anywhere from step 180 to the transplant.
    while rows() < 180 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert rows() >= 180, err_path.read_text() if proc.poll() is not None else "no checkpoint in time"
    time.sleep(random.uniform(0.0, 1.5))
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    assert not out.exists() and partial.exists()
    assert load_state(partial / "checkpoint")["recorder"]["t"] >= 180
    assert train_dqn.main(["--resume", str(out), "--no-progress"]) == 0
    a, b = LearningHistory.load(reference), LearningHistory.load(out)
    assert_same_history(a, b)
    assert set(np.unique(a.segment)) == {0, 1} and a.metadata["segments"][1]["env_id"] == "ALE/SpaceInvaders-v5"
    assert a.obs.shape == (500, 84, 84)  # one frame per step, never stacked
    # The training log continues where the checkpoint left it: no lost or repeated episodes.
    ma, mb = (p.with_name(p.name + ".metrics.csv") for p in (reference, out))
    for name in ("charts/episodic_return", "losses/td_loss"):
        assert metric_rows(ma, name) == metric_rows(mb, name), name
    assert len(metric_rows(ma, "losses/td_loss")) > 5


def test_cli_errors_are_one_line(tmp_path, capsys, monkeypatch):
    def fails(args, match, one_line=True):
        with pytest.raises(SystemExit) as e:
            train_dqn.main(args)
        assert e.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert match in err[-1], err
        assert len(err) == 1 or not one_line, err  # bad flags: argparse's usage line, then the error

    fails(["--env", "ALE/Breakoutt-v5", "--preset", "smoke", "--out", str(tmp_path / "x")], "unknown Atari game 'Breakoutt'")
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    fails(["--env", "ALE/Breakout-v5", "--preset", "smoke", "--out", str(blocker / "sub" / "run")], "cannot create")
    fails(["--env", "ALE/Breakout-v5", "--preset", "smoke", "--out", str(tmp_path / "y"), "--lr", "-1"], "lr must be", False)
    fails(["--env", "ALE/Breakout-v5", "--steps", "100", "--switch-to", "ALE/Pong-v5", "--switch-at", "100",
           "--out", str(tmp_path / "z")], "--switch-at must be", False)
    fails(["--resume", str(tmp_path / "nothing")], "cannot resume")
    monkeypatch.setenv("ALE_ROMS_DIR", str(tmp_path))
    fails(["--env", "ALE/Breakout-v5", "--preset", "smoke", "--out", str(tmp_path / "w")], "ROM for 'Breakout'")
    assert not any(p.name.startswith(("x", "y", "z", "w")) for p in tmp_path.iterdir())


def test_full_disk_leaves_a_resumable_run(tmp_path, capsys, monkeypatch):
    """ENOSPC while streaming the history: one line, exit 2; a finished run next to it still loads,
    and once space is back --resume completes the interrupted run exactly."""
    import learners.history_store as history_store

    ref = tmp_path / "ref"
    assert train_dqn.main(darkroom_args(ref)) == 0
    capsys.readouterr()
    out = tmp_path / "run"
    real = history_store.ColumnFile.append

    def append(self, rows):
        if self.path.stem == "obs" and self.rows + len(rows) > 500:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
        return real(self, rows)

    monkeypatch.setattr(history_store.ColumnFile, "append", append)
    with pytest.raises(SystemExit) as e:
        train_dqn.main(darkroom_args(out))
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No space left on device" in err[0] and "--resume" in err[0], err
    assert LearningHistory.load(ref).n_actions == 5  # the run already on disk is untouched
    monkeypatch.setattr(history_store.ColumnFile, "append", real)
    assert train_dqn.main(["--resume", str(out), "--no-progress"]) == 0
    assert_same_history(LearningHistory.load(ref), LearningHistory.load(out))
