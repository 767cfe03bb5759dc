"""The recorder and the evaluation protocol, on the real toy envs and teachers."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import envs
from experiments.protocol import (FrozenTeacher, UniformRandom, closed_loop, frozen_from_history, score_predictions,
                                  teacher_forced, teacher_from_history)
from learners import LearningHistory, Transition
from learners.corpus import ensure_histories, task_jobs
from learners.recorder import Recorder, Segment, record
from learners.teachers import make_teacher

ROOT = Path(__file__).resolve().parents[1]
DR = "hypospace/DarkRoom-v0"


def teacher_for(name, env_id=DR, seed=0, env_kwargs=None, **opts):
    e = envs.make(env_id, **(env_kwargs or {}))
    t = make_teacher(name, e.observation_space, e.action_space, seed=seed, **opts)
    e.close()
    return t


def assert_identical(a: LearningHistory, b: LearningHistory):
    for k, v in a.columns().items():
        np.testing.assert_array_equal(np.asarray(v), np.asarray(b.columns()[k]), err_msg=k)
    assert a.snapshot_steps == b.snapshot_steps
    for s in a.snapshot_steps:
        for k, v in a.weights_at(s).items():
            np.testing.assert_array_equal(v, b.weights_at(s)[k])


@pytest.mark.parametrize("name", ["q_learning", "sarsa", "expected_sarsa"])
def test_same_seed_bit_identical_and_different_seed_differs(name):
    kw = dict(episodes=60, seed=3, env_kwargs={"goal": [1, 2]}, snapshot_every=200)
    a = record(teacher_for(name, seed=3), DR, **kw)
    b = record(teacher_for(name, seed=3), DR, **kw)
    assert_identical(a, b)
    c = record(teacher_for(name, seed=4), DR, **{**kw, "seed": 4})
    assert not np.array_equal(a.action, c.action)


def test_history_columns_are_what_happened():
    h = record(teacher_for("q_learning"), DR, episodes=30, seed=0, env_kwargs={"goal": [0, 0]}, snapshot_every=100)
    assert len(h) == 600 and h.n_episodes == 30 and h.n_actions == 5
    assert np.all(h.truncated[19::20]) and not h.terminated.any()
    # teacher_values are the Q-values the teacher acted on: eps-greedy probs are a function of them.
    for t in range(0, 600, 37):
        q = h.teacher_values[t]
        greedy = np.flatnonzero(q == q.max())
        want = np.full(5, 0.1 / 5)
        want[greedy] += 0.9 / len(greedy)
        np.testing.assert_allclose(h.teacher_probs[t], want)
    # Dark Room rewards the step that begins on the goal; the final obs of each episode is stored.
    goal = 0
    np.testing.assert_array_equal(h.reward, (h.obs == goal).astype(float))
    assert len(h.final_obs_step) == 30 and h.next_obs(19) == h.final_obs[0]
    assert h.snapshot_steps == [0, 100, 200, 300, 400, 500, 600]
    np.testing.assert_array_equal(h.weights_at(0)["Q"], 0.0)
    assert h.metadata["teacher"]["teacher"] == "q_learning" and h.metadata["seed"] == 0


@pytest.mark.parametrize("name,opts", [("q_learning", {}), ("sarsa", {}), ("expected_sarsa", {"exploration": "softmax", "temperature": 0.5}),
                                       ("q_learning", {"step_size": "1/n", "init": 1.0, "exploration": "count_bonus"})])
def test_teacher_replayed_teacher_forced_reproduces_teacher_probs(name, opts):
    """A fresh copy of the teacher, shown the history teacher-forced, predicts teacher_probs exactly:
    the recorder, next_obs at episode ends and the protocol's step order are consistent."""
    h = record(teacher_for(name, **opts), DR, episodes=40, seed=1, env_kwargs={"goal": [7, 2]})
    r = teacher_forced(teacher_for(name, seed=99, **opts), h)
    np.testing.assert_allclose(r.probs, h.teacher_probs, atol=1e-12)
    assert r.kl_bits.max() < 1e-9


@pytest.mark.parametrize("cut", [300, 613])  # at an episode end, and mid-episode
def test_teacher_conditioned_on_truncated_history_has_the_snapshot_weights(cut):
    h = record(teacher_for("q_learning"), DR, episodes=40, seed=2, env_kwargs={"goal": [5, 1]}, snapshot_every=1)
    clone = teacher_for("q_learning", seed=9)
    teacher_forced(clone, h.truncate(cut))
    for k, v in h.weights_at(cut).items():
        np.testing.assert_array_equal(clone.weights()[k], v)


def test_segments_switch_task_and_are_marked():
    t = teacher_for("q_learning")
    segs = [Segment(DR, {"goal": [0, 0]}, episodes=10), Segment(DR, {"goal": [8, 8]}, episodes=5)]
    h = record(t, segs, seed=0)
    np.testing.assert_array_equal(h.segment, np.r_[np.zeros(200), np.ones(100)].astype(int))
    assert [s["env_kwargs"]["goal"] for s in h.metadata["segments"]] == [[0, 0], [8, 8]]
    np.testing.assert_array_equal(h.reward[200:], (h.obs[200:] == 80).astype(float))


def test_segment_cut_mid_episode_is_a_truncation():
    segs = [Segment(DR, {"goal": [0, 0]}, steps=30), Segment(DR, {"goal": [8, 8]}, steps=25)]
    h = record(teacher_for("sarsa"), segs, seed=0)
    assert h.truncated[29] and h.episode[30] == h.episode[29] + 1 and h.segment[30] == 1
    assert 29 in h.final_obs_step and 54 in h.final_obs_step  # successors of the cut and of the last step
    r = teacher_forced(teacher_for("sarsa", seed=7), h)
    np.testing.assert_allclose(r.probs, h.teacher_probs, atol=1e-12)


def test_bandit_recording_every_step_an_episode():
    e = envs.make("hypospace/Bandit-v0", means=[0.1, 0.9, 0.5])
    t = make_teacher("thompson", e.observation_space, e.action_space, seed=0)
    h = record(t, "hypospace/Bandit-v0", env_kwargs={"means": [0.1, 0.9, 0.5]}, episodes=300, seed=0)
    assert len(h) == 300 and h.n_episodes == 300 and h.terminated.all()
    assert np.mean(h.action[-100:] == 1) > 0.8


@pytest.mark.parametrize("name", ["q_learning", "sarsa"])
def test_killed_run_resumes_identically(tmp_path, name):
    kw = dict(seed=5, snapshot_every=150)
    segs = [Segment(DR, {"goal": [2, 2]}, episodes=25), Segment(DR, {"goal": [6, 7]}, episodes=20)]
    ref = Recorder(teacher_for(name, seed=5), segs, out=tmp_path / "ref", **kw).run()
    for kill_at in (333, 620):  # mid-episode in segment 0, and in segment 1
        out = tmp_path / f"k{kill_at}"
        r = Recorder(teacher_for(name, seed=5), segs, out=out, checkpoint_every=97, **kw)
        assert r.run(stop_after=kill_at) is None
        assert not out.exists() and (tmp_path / f"k{kill_at}.partial").exists()
        fresh = teacher_for(name, seed=12345)  # a different seed: everything must come from the checkpoint
        got = Recorder(fresh, segs, out=out, checkpoint_every=97, **kw).run(resume=True)
        assert_identical(ref, got)
        assert not (tmp_path / f"k{kill_at}.partial").exists()


def test_protocol_scores():
    h = record(teacher_for("q_learning"), DR, episodes=20, seed=0, env_kwargs={"goal": [3, 3]})
    u = teacher_forced(UniformRandom(5), h)
    tp = np.asarray(h.teacher_probs)
    ent = -(tp * np.log2(tp)).sum(1)
    np.testing.assert_allclose(u.kl_bits, np.log2(5) - ent, atol=1e-12)
    np.testing.assert_allclose(u.log_loss_bits, np.log2(5))
    # the step loop and the fast path agree
    slow = teacher_forced(UniformRandom(5), h, use_fast_path=False)
    np.testing.assert_allclose(slow.probs, u.probs)
    # a point-mass imitator that misses the taken action has infinite log-loss (reported, not hidden)
    bad = np.zeros_like(tp)
    bad[np.arange(len(h)), (np.asarray(h.action) + 1) % 5] = 1
    s = score_predictions(bad, h)
    assert np.isinf(s.log_loss_bits).all() and not s.agree.all()


class _Spy:
    """Records the intervention flags it is given."""

    n_actions = 5

    def __init__(self):
        self.flags = []

    def action_probs(self, obs):
        return np.full(5, 0.2)

    def observe(self, transition, *, intervention=True):
        assert isinstance(transition, Transition)
        self.flags.append(intervention)


def test_closed_loop_passes_own_actions_as_interventions_and_is_reproducible():
    spy = _Spy()
    r = closed_loop(spy, DR, episodes=3, seed=0, env_kwargs={"goal": [0, 0]})
    assert r.lengths.tolist() == [20, 20, 20] and spy.flags == [True] * 60
    r2 = closed_loop(_Spy(), DR, episodes=3, seed=0, env_kwargs={"goal": [0, 0]})
    np.testing.assert_array_equal(r.history.action, r2.history.action)
    spy2 = _Spy()
    teacher_forced(spy2, r.history, use_fast_path=False)
    assert spy2.flags == [False] * 60


def test_frozen_teacher_acts_but_never_learns_and_learner_keeps_improving():
    h = record(teacher_for("q_learning"), DR, episodes=150, seed=0, env_kwargs={"goal": [1, 7]}, snapshot_every=20)
    # Early in learning: just after the third episode that found the goal.
    e3 = int(np.flatnonzero(h.episode_returns() > 0)[2])
    snap = min(s for s in h.snapshot_steps if s >= h.episode_starts()[e3 + 1])
    frozen = frozen_from_history(h, snap)
    q_before = frozen.teacher.weights()["Q"].copy()
    fr = closed_loop(frozen, DR, episodes=100, seed=1, env_kwargs={"goal": [1, 7]})
    np.testing.assert_array_equal(frozen.teacher.weights()["Q"], q_before)  # never learns
    learner = teacher_from_history(h, snap)  # same weights, but keeps learning in closed loop
    lr = closed_loop(learner, DR, episodes=100, seed=1, env_kwargs={"goal": [1, 7]})
    assert lr.returns[-30:].mean() > fr.returns[-30:].mean() + 3, (lr.returns[-30:].mean(), fr.returns[-30:].mean())


def run_cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "experiments.record", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_record_cli_help_lists_envs_and_teachers():
    r = run_cli("--help")
    assert r.returncode == 0
    text = " ".join(r.stdout.split())  # argparse wraps lines
    for name in list(envs.ENV_IDS) + ["q_learning", "sarsa", "expected_sarsa", "thompson", "ucb1", "bandit_eps_greedy"]:
        assert name in text
    r = run_cli("--teacher", "q_learning", "--help")
    assert "--epsilon" in r.stdout and "--step-size" in r.stdout


@pytest.mark.parametrize("args,msg", [
    (["--env", "hypospace/Nope-v0", "--teacher", "q_learning", "--episodes", "2"], "unknown env"),
    (["--env", DR, "--teacher", "nope", "--episodes", "2"], "unknown teacher"),
    (["--env", DR, "--teacher", "q_learning", "--episodes", "2", "--epsilon", "1.5"], "epsilon"),
    (["--env", DR, "--teacher", "q_learning", "--episodes", "0"], "positive"),
    (["--env", DR, "--teacher", "q_learning", "--episodes", "2", "--env-kwargs", "goal=[99,0]"], "goal"),
    (["--env", DR, "--teacher", "thompson", "--episodes", "2"], "does not fit"),
    (["--env", DR, "--teacher", "q_learning", "--episodes", "2", "--task", "test:99"], "test split has"),
])
def test_record_cli_bad_input_one_line_exit_2_nothing_written(tmp_path, args, msg):
    out = tmp_path / "h"
    r = run_cli(*args, "--out", str(out))
    assert r.returncode == 2, r.stderr
    lines = [l for l in r.stderr.strip().splitlines() if l.strip()]
    assert msg in lines[-1] and "Traceback" not in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_record_cli_plans_a_dqn_schedule_over_the_recorded_steps(tmp_path):
    out = tmp_path / "d"
    r = run_cli("--env", DR, "--teacher", "dqn", "--preset", "smoke", "--steps", "300", "--out", str(out), "--no-progress")
    assert r.returncode == 0, r.stderr
    h = LearningHistory.load(out)
    assert len(h) == 300 and h.metadata["cli"]["teacher_options"]["total_steps"] == 300


def test_record_cli_records_refuses_existing_out_and_resumes(tmp_path):
    out = tmp_path / "h"
    r = run_cli("--env", DR, "--teacher", "sarsa", "--episodes", "50", "--seed", "2", "--task", "train:4",
                "--out", str(out), "--no-progress", "--checkpoint-every", "300")
    assert r.returncode == 0, r.stderr
    h = LearningHistory.load(out)
    assert h.n_episodes == 50 and h.metadata["cli"]["teacher"] == "sarsa" and "commit" in h.metadata["run"]
    assert "% of optimal" in r.stdout
    r2 = run_cli("--env", DR, "--teacher", "sarsa", "--episodes", "5", "--out", str(out))
    assert r2.returncode == 2 and "already exists" in r2.stderr
    r3 = run_cli("--resume", str(out))
    assert r3.returncode == 2 and "already complete" in r3.stderr
    # A run killed mid-way (simulated by the recorder's stop_after), resumed through the CLI.
    cli = json.loads(json.dumps(h.metadata["cli"]))
    out2 = tmp_path / "k"
    t = teacher_for("sarsa", seed=2, env_kwargs=cli["env_kwargs"])
    Recorder(t, [Segment(DR, cli["env_kwargs"], episodes=50)], seed=2, snapshot_every=1000, out=out2, checkpoint_every=300,
             metadata={"cli": cli}).run(stop_after=700)
    r4 = run_cli("--resume", str(out2), "--no-progress")
    assert r4.returncode == 0, r4.stderr
    assert_identical(h, LearningHistory.load(out2))


def test_a_corpus_is_recorded_once_into_the_cache(tmp_cache):
    """``ensure_histories`` records each job into ``$HYPOSPACE_CACHE/histories/<key>`` the first
    time and reuses it after; the cached history is the one the job records."""
    tasks = [{"size": 5, "goal": [0, 0]}, {"size": 5, "goal": [4, 1]}]
    jobs = task_jobs("hypospace/DarkRoom-v0", tasks, teachers=[{"name": "q_learning"}, {"name": "sarsa"}],
                     seeds_per_task=2, episodes=5, seed=3, salt=1)
    assert len({j.key() for j in jobs}) == 4 and [j.teacher["name"] for j in jobs] == ["q_learning", "sarsa"] * 2
    paths = ensure_histories(jobs)
    assert all(p.parent == tmp_cache / "histories" for p in paths)
    stamps = [(p / "manifest.json").stat().st_mtime_ns for p in paths]
    assert ensure_histories(jobs) == paths
    assert [(p / "manifest.json").stat().st_mtime_ns for p in paths] == stamps  # nothing re-recorded
    again = jobs[3].record(None)
    cached = LearningHistory.load(paths[3])
    for c, v in again.columns().items():
        assert np.array_equal(np.asarray(v), np.asarray(cached.columns()[c])), c


def test_record_cli_gives_noisy_optimal_the_tasks_optimal_actions(tmp_path):
    """The registered AD-eps teacher from the command line: the env supplies its optimal arm, and
    once the noise is gone every pull is drawn from it alone; a bandit without means is refused."""
    r = run_cli("--env", "hypospace/Bandit-v0", "--env-kwargs", "means=[0.1,0.8,0.3]", "--teacher", "noisy_optimal",
                "--episodes", "12", "--noise-episodes", "4", "--out", str(tmp_path / "h"), "--no-progress")
    assert r.returncode == 0, r.stderr
    p = np.asarray(LearningHistory.load(tmp_path / "h").teacher_probs)
    assert np.allclose(p[0], 1 / 3) and np.array_equal(p[4:], np.tile([0.0, 1.0, 0.0], (8, 1)))
    r = run_cli("--env", "hypospace/Bandit-v0", "--teacher", "noisy_optimal", "--episodes", "3", "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "means" in r.stderr
