"""The DQN teacher: exact action distribution, CleanRL's schedule, a frame-once replay that
rebuilds the stacks the env produced, learning on Dark Room, snapshots, and exact resume."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import envs
from envs.atari import make_atari
from learners.protocols import Transition
from learners.teachers import make_teacher
from learners.teachers.dqn import PRESETS, DQNConfig
from learners.teachers.replay import FrameReplay


def darkroom_teacher(seed=0, goal=(2, 7), **kw):
    env = envs.make("hypospace/DarkRoom-v0", size=9, goal=goal)
    opts = dict(preset="smoke", total_steps=3000, buffer_size=3000, learning_starts=200, train_every=2,
                target_update_every=100, lr=1e-3, gamma=0.9, exploration_fraction=0.5, end_epsilon=0.05,
                batch_size=64)
    opts.update(kw)
    return env, make_teacher("dqn", env.observation_space, env.action_space, seed=seed, **opts)


def drive(env, t, obs, n):
    """``n`` steps of ``t`` acting and learning in ``env`` from ``obs``; returns the last observation."""
    for _ in range(n):
        a = t.act(obs)
        nxt, r, term, trunc, _ = env.step(a)
        t.observe(Transition(obs, a, r, nxt, term, trunc))
        obs = env.reset()[0] if term or trunc else nxt
    return obs


def test_config_presets_defaults_and_validation():
    c = DQNConfig(preset="paper")
    # CleanRL dqn_atari defaults.
    assert (c.buffer_size, c.learning_starts, c.train_every, c.target_update_every, c.batch_size, c.lr,
            c.start_epsilon, c.end_epsilon, c.exploration_fraction, c.gamma) == \
        (1_000_000, 80_000, 4, 1_000, 32, 1e-4, 1.0, 0.01, 0.1, 0.99)
    c = DQNConfig(preset="smoke", buffer_size=77)  # an explicit field wins over its preset
    assert c.buffer_size == 77 and c.total_steps == PRESETS["smoke"]["total_steps"]
    assert DQNConfig(**dataclasses.asdict(c)) == c  # what teacher_from_history relies on
    for bad in ({"preset": "huge"}, {"lr": 0}, {"gamma": 1.5}, {"batch_size": 0}, {"loss": "l1"},
                {"mlp_hidden": []}, {"end_epsilon": float("nan")}, {"on_switch_buffer": "drop"}):
        with pytest.raises(ValueError):
            DQNConfig(**bad)
    with pytest.raises(ValueError, match="CUDA is not available|bad device"):
        env = envs.make("hypospace/DarkRoom-v0")
        make_teacher("dqn", env.observation_space, env.action_space, device="cuda:7" if not _cuda() else "nope")


def _cuda():
    import torch

    return torch.cuda.is_available()


def test_action_probs_exact_ties_and_pure():
    import torch

    env, t = darkroom_teacher()
    last = t.q[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor([0.5, 2.0, 2.0, -1.0, 0.0]))
    eps = t.epsilon
    assert eps == 1.0
    t.t = 900  # halfway through exploration_fraction * total_steps = 1500 steps
    eps = t.epsilon
    assert eps == pytest.approx(1.0 - 0.95 * 900 / 1500)
    p = t.action_probs(3)
    expect = np.full(5, eps / 5)
    expect[[1, 2]] += (1 - eps) / 2  # a tie shares the greedy mass exactly
    np.testing.assert_allclose(p, expect, rtol=0, atol=1e-15)
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    probs, values = t.action_probs_and_values(3)
    np.testing.assert_array_equal(probs, p)
    np.testing.assert_array_equal(values, np.array([0.5, 2.0, 2.0, -1.0, 0.0], np.float32))
    np.testing.assert_array_equal(t.values(3), values)
    np.testing.assert_array_equal(t.action_probs(3), p)  # pure: same answer, no state change
    # act draws from exactly these probabilities with one uniform of the teacher's generator.
    state = t.rng.bit_generator.state
    a = t.act(3)
    u = np.random.Generator(np.random.PCG64()).__class__  # noqa: F841  (documenting the draw below)
    g = np.random.default_rng()
    g.bit_generator.state = state
    assert a == int(np.searchsorted(np.cumsum(p), g.random() * p.sum(), side="right"))
    t.t = 10_000
    assert t.epsilon == pytest.approx(0.05)


def test_replay_rebuilds_the_stacks_the_env_produced():
    """Frames stored once in a small wrapping buffer; every sampleable transition's obs stack and
    next-obs stack equal what FrameStackObservation returned, across terminations and
    truncations (whose final frame is kept on the side)."""
    env = make_atari("ALE/Breakout-v5", max_num_frames_per_episode=720)
    rng = np.random.default_rng(1)
    rb = FrameReplay(capacity=150, frame_shape=(84, 84), frame_dtype=np.uint8, stack=4)
    obs, _ = env.reset(seed=2)
    seen = []
    ends = {"term": 0, "trunc": 0}
    for t in range(1000):
        a = int(rng.integers(18))
        nxt, r, term, trunc, _ = env.step(a)
        rb.add(obs[-1], a, r, nxt[-1], term, trunc)
        seen.append((obs, nxt, term, a, r))
        ends["term"] += term
        ends["trunc"] += trunc and not term
        obs = env.reset()[0] if term or trunc else nxt
    env.close()
    assert ends["term"] >= 1 and ends["trunc"] >= 1
    idx = np.arange(rb.lo, rb.t)
    assert len(idx) == 150
    g = rb.gather(idx)
    for row, i in enumerate(idx):
        o, n, term, a, r = seen[i]
        np.testing.assert_array_equal(g["frames"][row, :4], o)
        if not term:
            np.testing.assert_array_equal(g["frames"][row, 1:], n)
        assert g["action"][row] == a and g["reward"][row] == r and g["terminated"][row] == term
    s = rb.sample_indices(10_000, np.random.default_rng(0))
    assert s.min() == rb.lo and s.max() == rb.t - 1
    # Full-state round trip.
    rb2 = FrameReplay(capacity=150, frame_shape=(84, 84), frame_dtype=np.uint8, stack=4)
    rb2.load_state(rb.state())
    g2 = rb2.gather(idx)
    assert all(np.array_equal(g[k], g2[k]) for k in g)


def test_dqn_learns_darkroom_one_hot():
    """Greedy return >= 80% of optimal after 3000 steps (150 episodes) on two goals."""
    for goal in [(2, 7), (8, 3)]:
        env, t = darkroom_teacher(seed=0, goal=goal)
        assert t.kind == "onehot" and t.stack == 1
        drive(env, t, env.reset(seed=0)[0], 3000)
        obs, _ = env.reset()
        ret = 0.0
        for _ in range(20):
            obs, r, term, trunc, _ = env.step(int(np.argmax(t.values(obs))))
            ret += r
        opt = env.unwrapped.optimal_return()
        assert ret >= 0.8 * opt, (goal, ret, opt)
        assert t.n_updates > 1000


def test_weights_snapshot_round_trip_and_state_resume():
    """weights() -> load_weights reproduces the policy; get_state/set_state continues a run
    bit-identically (networks, Adam, replay, counters, every RNG)."""
    env, t = darkroom_teacher(seed=3, total_steps=600, buffer_size=300)
    obs, _ = env.reset(seed=0)
    log = []

    def run(teacher, n, obs):
        for _ in range(n):
            p, v = teacher.action_probs_and_values(obs)
            a = teacher.act(obs)
            nxt, r, term, trunc, _ = env.step(a)
            teacher.observe(Transition(obs, a, r, nxt, term, trunc))
            log.append((a, p.copy(), v.copy()))
            obs = env.reset()[0] if term or trunc else nxt
        return obs

    obs = run(t, 400, obs)
    w = t.weights()
    _, fresh = darkroom_teacher(seed=99, total_steps=600, buffer_size=300)
    fresh.load_weights(w)
    for s in range(81):
        if s != 40:
            np.testing.assert_array_equal(fresh.action_probs(s), t.action_probs(s))
    state = t.get_state()
    env_state = env.get_wrapper_attr("get_state")()
    n0 = len(log)
    run(t, 300, obs)
    first = log[n0:]
    del log[n0:]
    _, r = darkroom_teacher(seed=5, total_steps=600, buffer_size=300)
    r.set_state(state)
    env.get_wrapper_attr("set_state")(env_state)
    run(r, 300, obs)
    assert [x[0] for x in first] == [x[0] for x in log[n0:]]
    for a, b in zip(first, log[n0:]):
        np.testing.assert_array_equal(a[1], b[1])
        np.testing.assert_array_equal(a[2], b[2])
    for k, v in t.weights().items():
        np.testing.assert_array_equal(v, r.weights()[k])


def test_transplant_policies():
    env, t = darkroom_teacher(seed=0, total_steps=400, on_switch_buffer="clear", on_switch_epsilon="restart",
                              on_switch_optimizer="reset")
    obs = drive(env, t, env.reset(seed=0)[0], 250)
    eps_before, updates = t.epsilon, t.n_updates
    assert updates > 0 and t.replay.size == 250
    t.begin_segment(1)
    assert t.replay.size == 0 and t.epsilon == 1.0 and len(t.optimizer.state) == 0
    drive(env, t, obs, 150)  # refills learning_starts steps before training again
    assert t.n_updates == updates and eps_before < 1.0


def test_snapshots_reproduce_recorded_probs(tmp_path):
    """A weight snapshot at step s (before acting at s) rebuilds a teacher whose action_probs at
    the recorded observation equal the recorded teacher_probs and teacher_values (epsilon included)."""
    from experiments.protocol import FrozenTeacher, teacher_from_history
    from learners.recorder import record

    env, t = darkroom_teacher(seed=2, total_steps=400)
    h = record(t, "hypospace/DarkRoom-v0", env_kwargs={"size": 9, "goal": [2, 7]}, steps=400, seed=0,
               snapshot_every=100, out=tmp_path / "h")
    assert h.snapshot_steps == [0, 100, 200, 300, 400]
    for s in (100, 300):
        frozen = FrozenTeacher(teacher_from_history(h, step=s))
        np.testing.assert_array_equal(frozen.action_probs(int(h.obs[s])), h.teacher_probs[s])
        np.testing.assert_array_equal(frozen.teacher.values(int(h.obs[s])), h.teacher_values[s])
    assert 0 < h.teacher_probs[300].min() < h.teacher_probs[100].min()  # epsilon decayed in between
