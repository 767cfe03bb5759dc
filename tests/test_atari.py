"""The Atari data path: the Machado et al. 2018 protocol, exact emulator save/restore, clear
errors, and frame stacks rebuilt by index from a history that stores each frame once."""
from __future__ import annotations

import numpy as np
import pytest

import envs
from envs.atari import PROTOCOL, AtariError, frame_stacks, make_atari


@pytest.mark.parametrize("env_id", ["ALE/Breakout-v5", "ALE/SpaceInvaders-v5", "ALE/Pong-v5"])
def test_protocol(env_id):
    env = envs.make(env_id)
    try:
        assert env.observation_space.shape == (4, 84, 84) and env.observation_space.dtype == np.uint8
        assert env.action_space.n == 18  # full action set: one action space for every game
        ale = env.unwrapped.ale
        assert ale.getFloat("repeat_action_probability") == pytest.approx(0.25)
        assert ale.getInt("max_num_frames_per_episode") == 108_000
        assert env.unwrapped._frameskip == 1  # the preprocessing skips; stickiness acts per frame
        pre = env.get_wrapper_attr("_pre")
        assert pre.frame_skip == 4 and not pre.terminal_on_life_loss and pre.noop_max == 0
        obs, _ = env.reset(seed=0)
        assert obs.shape == (4, 84, 84)
        assert all(np.array_equal(obs[0], f) for f in obs)  # a new episode is padded with its first frame
        obs2, *_ = env.step(0)
        np.testing.assert_array_equal(obs2[:3], obs[1:])  # rolling stack, oldest first
    finally:
        env.close()


def test_episode_ends_at_game_over_not_life_loss():
    env = make_atari("ALE/Breakout-v5")
    env.reset(seed=1)
    rng = np.random.default_rng(0)
    lives = [env.unwrapped.ale.lives()]
    for _ in range(5000):
        _, _, term, trunc, info = env.step(int(rng.integers(18)))
        lives.append(info["lives"])
        if term or trunc:
            break
    assert term and lives[-1] == 0
    assert len(set(lives)) > 2  # lives were lost along the way without ending the episode
    env.close()


def test_state_restore_is_exact_across_envs():
    """cloneState(include_rng=True) + the wrappers' buffers: a restored env in a fresh process-like
    copy produces the same frames, rewards and ends, through an episode boundary (sticky actions
    draw from the emulator's RNG, so the RNG must be part of the state)."""
    rng = np.random.default_rng(0)
    a = make_atari("ALE/Breakout-v5", max_num_frames_per_episode=1600)
    a.reset(seed=3)
    for _ in range(150):
        a.step(int(rng.integers(18)))
    state = a.get_state()
    b = make_atari("ALE/Breakout-v5", max_num_frames_per_episode=1600)
    b.reset(seed=12345)  # a different seed: everything must come from the state
    b.set_state(state)
    actions = rng.integers(18, size=500)
    resets = 0
    for act in actions:
        ra, rb = a.step(int(act)), b.step(int(act))
        np.testing.assert_array_equal(ra[0], rb[0])
        assert ra[1:4] == rb[1:4]
        if ra[2] or ra[3]:
            resets += 1
            np.testing.assert_array_equal(a.reset()[0], b.reset()[0])
    assert resets >= 1
    a.close()
    b.close()


def test_errors_are_clear(monkeypatch, tmp_path):
    with pytest.raises(AtariError, match="unknown Atari game 'Breakoutt'.*Breakout"):
        envs.make("ALE/Breakoutt-v5")
    with pytest.raises(AtariError, match="ALE/<Game>-v5"):
        envs.make("ALE/Breakout-v4")
    monkeypatch.setenv("ALE_ROMS_DIR", str(tmp_path))  # an empty ROM directory
    with pytest.raises(AtariError, match="ROM for 'Breakout'.*missing") as e:
        envs.make("ALE/Breakout-v5")
    assert "\n" not in str(e.value)


def test_history_stores_frames_once_and_stacks_rebuild(tmp_path):
    """Record with the newest frame only; every stacked observation the teacher saw (and every
    final observation) is rebuilt exactly by index, across episode ends and truncations."""
    from learners.recorder import env_seed, record
    from learners.teachers import make_teacher

    env = envs.make("ALE/Breakout-v5", max_num_frames_per_episode=480)  # truncates at 120 steps
    teacher = make_teacher("dqn", env.observation_space, env.action_space, seed=0, preset="smoke",
                           start_epsilon=1.0, end_epsilon=1.0, learning_starts=10_000)
    h = record(teacher, "ALE/Breakout-v5", env_kwargs={"max_num_frames_per_episode": 480}, steps=400, seed=5,
               out=tmp_path / "h", obs_transform=lambda o: np.asarray(o)[-1])
    assert h.obs.shape == (400, 84, 84) and h.obs.dtype == np.uint8
    assert h.truncated.sum() >= 1 and (h.terminated | h.truncated).sum() >= 3
    # Replay the recorded actions in a fresh env: same seed, same frames.
    seen, finals = [], {}
    obs, _ = env.reset(seed=env_seed(5, 0))
    for t in range(400):
        seen.append(obs)
        obs, _, term, trunc, _ = env.step(int(h.action[t]))
        if term or trunc:
            finals[t] = obs
            obs, _ = env.reset()
    env.close()
    np.testing.assert_array_equal(frame_stacks(h, np.arange(400)), np.stack(seen))
    for t, o in finals.items():
        np.testing.assert_array_equal(h.next_obs(t), o[-1])
    assert np.allclose(h.teacher_probs, 1 / 18)  # epsilon 1: uniform, exactly what was drawn from
    assert PROTOCOL["frame_stack"] == 4
