"""Teachers' state: weight snapshots, same seed same run, bit-identical resume from a checkpoint,
and the AD-eps noise-injected source."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import envs
from learners.checkpoint import load_state, save_state
from learners.protocols import Transition
from learners.recorder import record
from learners.teachers import make_teacher

TABULAR = ("q_learning", "sarsa", "expected_sarsa")
BANDIT = ("bandit_eps_greedy", "ucb1", "thompson")
DARKROOM, CHAIN, BANDIT_ENV = "hypospace/DarkRoom-v0", "hypospace/Chain-v0", "hypospace/Bandit-v0"


def bandit(name, A=3, seed=0, **kw):
    return make_teacher(name, gym.spaces.Discrete(1), gym.spaces.Discrete(A), seed=seed, **kw)


def step(t, s, a, r, s2, terminated=False, truncated=False):
    t.observe(Transition(s, a, r, s2, terminated, truncated))

# ---------------------------------------------------------------------------------------------
# Weights, snapshots, bit-identical resume
# ---------------------------------------------------------------------------------------------
def run_steps(teacher, env, obs, n):
    """n steps of the teacher-env loop from ``obs``; returns (obs, actions, probs rows)."""
    actions, probs = [], []
    for _ in range(n):
        probs.append(teacher.action_probs(obs))
        a = teacher.act(obs)
        o2, r, term, trunc, _ = env.step(a)
        teacher.observe(Transition(obs, a, float(r), o2, term, trunc))
        actions.append(a)
        obs = env.reset()[0] if term or trunc else o2
    return obs, np.array(actions), np.array(probs)


RESUME_CASES = [(name, DARKROOM, {"size": 5, "goal": [1, 0]}, {}) for name in TABULAR] + [
    ("sarsa", CHAIN, {}, {"exploration": "count_bonus", "step_size": "1/n"}),
    ("expected_sarsa", CHAIN, {}, {"exploration": "softmax", "init": 1.0}),
] + [(name, BANDIT_ENV, {"means": [0.2, 0.5, 0.45, 0.8]}, {}) for name in BANDIT]


@pytest.mark.parametrize("name,env_id,task,opts", RESUME_CASES,
                         ids=[f"{c[0]}-{c[1].split('/')[1]}" for c in RESUME_CASES])
def test_restored_teacher_continues_bit_identically(tmp_path, name, env_id, task, opts):
    env = envs.make(env_id, **task)
    t = make_teacher(name, env.observation_space, env.action_space, seed=11, **opts)
    obs, _ = env.reset(seed=99)
    obs, _, _ = run_steps(t, env, obs, 133)  # mid-episode for the 20/30-step envs
    state = t.get_state()
    if name == "sarsa":
        assert state["pending"] is not None  # the deferred transition is part of the state
    env_state = env.get_wrapper_attr("get_state")()
    save_state(tmp_path / "ck", {"teacher": state, "env": env_state})
    _, acts_a, probs_a = run_steps(t, env, obs, 400)

    loaded = load_state(tmp_path / "ck", mmap=True)
    env2 = envs.make(env_id, **task)
    env2.reset()
    env2.get_wrapper_attr("set_state")(loaded["env"])
    u = make_teacher(name, env2.observation_space, env2.action_space, seed=12345, **opts)  # other seed
    u.set_state(loaded["teacher"])
    _, acts_b, probs_b = run_steps(u, env2, obs, 400)
    np.testing.assert_array_equal(acts_a, acts_b)
    np.testing.assert_array_equal(probs_a, probs_b)
    for k, v in t.weights().items():
        np.testing.assert_array_equal(v, u.weights()[k])
    assert t.rng.bit_generator.state == u.rng.bit_generator.state


@pytest.mark.parametrize("name", TABULAR + BANDIT)
def test_weights_snapshot_round_trip_and_same_seed_same_run(name):
    kind_env = BANDIT_ENV if name in BANDIT else DARKROOM
    task = {"means": [0.3, 0.6, 0.5]} if name in BANDIT else {"size": 5, "goal": [4, 4]}
    env = envs.make(kind_env, **task)
    a = make_teacher(name, env.observation_space, env.action_space, seed=3)
    b = make_teacher(name, env.observation_space, env.action_space, seed=3)
    ha = record(a, kind_env, env_kwargs=task, episodes=60, seed=1, snapshot_every=50)
    hb = record(b, kind_env, env_kwargs=task, episodes=60, seed=1, snapshot_every=50)
    np.testing.assert_array_equal(ha.action, hb.action)
    np.testing.assert_array_equal(ha.teacher_probs, hb.teacher_probs)
    w = a.weights()
    for k in w:  # a snapshot, not a view
        w[k][...] = 0
    assert any(np.any(v != 0) for v in a.weights().values())
    # A snapshot restores the teacher as it was before acting at that step.
    for step_ in (0, 50, len(ha.action)):
        c = make_teacher(name, env.observation_space, env.action_space, seed=9)
        c.load_weights(ha.weights_at(step_))
        if step_ < len(ha.action):
            np.testing.assert_array_equal(c.action_probs(ha.obs[step_]), ha.teacher_probs[step_])
            np.testing.assert_array_equal(c.values(ha.obs[step_]), ha.teacher_values[step_])
        else:
            for k, v in a.weights().items():
                np.testing.assert_array_equal(c.weights()[k], v)


# ---------------------------------------------------------------------------------------------
# The AD-eps source: the optimal policy behind a falling noise schedule
# ---------------------------------------------------------------------------------------------
def test_noisy_optimal_goes_from_uniform_to_the_optimal_policy_on_its_schedule():
    env = envs.make("hypospace/DarkRoom-v0", goal=[1, 7])
    opt = env.unwrapped.optimal_actions()
    t = make_teacher("noisy_optimal", env.observation_space, env.action_space, seed=3, noise_episodes=4, noise_final=0.2,
                     optimal=opt.tolist())
    h = record(t, "hypospace/DarkRoom-v0", env_kwargs={"goal": [1, 7]}, episodes=6, seed=0)
    p = np.asarray(h.teacher_probs)
    ep = np.asarray(h.episode)
    assert np.allclose(p[ep == 0], 0.2)                         # episode 0: uniform over 5 actions
    best = opt[np.asarray(h.obs)]                                # the optimal actions at each step
    on_best = (p * best).sum(1)
    # eps_e = 1 - 0.8 * e / 4 until episode 4, then 0.2: mass on the optimal actions grows with it.
    for e, eps in [(1, 0.8), (2, 0.6), (4, 0.2), (5, 0.2)]:
        want = eps * best[ep == e].sum(1) / 5 + (1 - eps)
        assert np.allclose(on_best[ep == e], want)
    assert h.episode_returns()[-1] > h.episode_returns()[0]     # late episodes reach the goal
    assert h.metadata["teacher"] == {"teacher": "noisy_optimal", "seed": 3, "noise_episodes": 4, "noise_final": 0.2}


def test_noisy_optimal_needs_the_tasks_optimal_actions():
    with pytest.raises(ValueError, match="optimal"):
        bandit("noisy_optimal")
    with pytest.raises(ValueError, match="optimal"):
        bandit("noisy_optimal", optimal=[[False, False, False]])
    t = bandit("noisy_optimal", optimal=[[False, True, False]], noise_episodes=1, noise_final=0.0)
    step(t, 0, 0, 0.0, 0, terminated=True)
    assert np.array_equal(t.action_probs(0), [0.0, 1.0, 0.0])
