"""The toy envs: gymnasium API, task rules, exact models, seeding, checkpoints, task splits."""
from __future__ import annotations

import json
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from scipy import stats

import envs  # noqa: F401  (registers hypospace/*)
from envs.chain import Chain, default_episode_len
from envs.darkroom import DarkRoom
from envs.keytodoor import DarkKeyToDoor
from envs.tasks import CHAIN_SLIPS, TaskSplit, optimal_return, task_split

BANDIT, ROOM, KEY, CHAIN = ("hypospace/Bandit-v0", "hypospace/DarkRoom-v0",
                            "hypospace/DarkKeyToDoor-v0", "hypospace/Chain-v0")
UP, RIGHT, DOWN, LEFT, NOOP = range(5)

SIZES = [  # tiny and large of every env, plus the defaults
    (BANDIT, {"n_arms": 2}), (BANDIT, {"means": np.linspace(0, 1, 64).tolist()}), (BANDIT, {}),
    (ROOM, {"size": 3, "goal": (0, 0)}), (ROOM, {"size": 17, "goal": 5}), (ROOM, {"size": 4, "goal": (0, 3)}), (ROOM, {}),
    (KEY, {"size": 2}), (KEY, {"size": 17, "key": (3, 3), "door": (16, 0)}), (KEY, {}),
    (CHAIN, {"n": 2}), (CHAIN, {"n": 50, "mirrored": True}), (CHAIN, {}),
]


def _ids(p):
    return f"{p[0].split('/')[1]}-{json.dumps(p[1])[:40]}"


@pytest.mark.parametrize("env_id,kwargs", SIZES, ids=[_ids(p) for p in SIZES])
def test_check_env_passes_without_warnings(env_id, kwargs):
    env = gym.make(env_id, **kwargs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    # (a ResourceWarning here would be another test's object collected meanwhile, not check_env's)
    assert [str(w.message) for w in caught if not issubclass(w.category, ResourceWarning)] == []
    assert env.unwrapped.render_mode is None
    text = gym.make(env_id, render_mode="ansi", **kwargs)
    text.reset(seed=0)
    assert isinstance(text.render(), str)


def _rollout(env, actions, *, seed=None, first_reset=True):
    """Outputs of ``env`` under a fixed action list, resetting (unseeded) at episode ends."""
    out = []
    if first_reset:
        out.append(("reset", env.reset(seed=seed)[0]))
    for a in actions:
        obs, r, term, trunc, info = env.step(a)
        out.append((obs, r, term, trunc, json.dumps(info, sort_keys=True)))
        if term or trunc:
            out.append(("reset", env.reset()[0]))
    return out


# ---- Dark Room -----------------------------------------------------------------------------
def _shortest_path_action(pos, goal):
    (r, c), (gr, gc) = pos, goal
    if r > gr:
        return UP
    if r < gr:
        return DOWN
    if c < gc:
        return RIGHT
    if c > gc:
        return LEFT
    return NOOP


def test_darkroom_shortest_path_reaches_optimal_return_on_every_goal_of_a_9x9_split():
    split = task_split(ROOM, seed=0, size=9)
    assert len(split.train) + len(split.test) == 80
    for task in split.train + split.test:
        env = gym.make(ROOM, **task)
        obs, _ = env.reset(seed=1)
        ret, done = 0.0, False
        while not done:
            action = _shortest_path_action(divmod(obs, 9), tuple(task["goal"]))
            obs, r, term, trunc, _ = env.step(action)
            ret += r
            done = term or trunc
        d = abs(task["goal"][0] - 4) + abs(task["goal"][1] - 4)
        assert ret == 20 - d == optimal_return(ROOM, **task)


def _grid_optimal_return(size, goal, episode_len):
    """Finite-horizon value iteration on the Dark Room (independent of the env's code)."""
    cells = np.arange(size * size)
    r, c = np.divmod(cells, size)
    nxt = np.stack([np.maximum(r - 1, 0) * size + c, r * size + np.minimum(c + 1, size - 1),
                    np.minimum(r + 1, size - 1) * size + c, r * size + np.maximum(c - 1, 0), cells], axis=1)
    reward = (cells == goal[0] * size + goal[1]).astype(float)
    V = np.zeros(size * size)
    for _ in range(episode_len):
        V = reward + V[nxt].max(axis=1)
    return V[(size // 2) * size + size // 2]


@pytest.mark.parametrize("size,episode_len", [(3, 20), (4, 20), (17, 20), (9, 5)])
def test_darkroom_optimal_return_matches_value_iteration(size, episode_len):
    for goal in [(r, c) for r in range(size) for c in range(size) if (r, c) != (size // 2, size // 2)]:
        assert optimal_return(ROOM, size=size, goal=goal, episode_len=episode_len) == \
            _grid_optimal_return(size, goal, episode_len)


def test_darkroom_reward_is_paid_for_steps_that_begin_on_the_goal():
    env = gym.make(ROOM, size=5, goal=(1, 2))
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    assert obs == 2 * 5 + 2  # the centre
    hits = 0
    for _ in range(5000):
        next_obs, r, term, trunc, info = env.step(int(rng.integers(5)))
        assert r == (1.0 if obs == 1 * 5 + 2 else 0.0)
        assert term is False and info == {}
        hits += r
        obs = next_obs
        if trunc:
            obs, _ = env.reset()
    assert hits > 0
    # Arriving on the goal pays nothing; staying there pays every step.
    env.reset()
    assert env.step(UP)[:2] == (7, 0.0)  # arrives on (1, 2)
    assert env.step(NOOP)[:2] == (7, 1.0)
    assert env.step(DOWN)[:2] == (12, 1.0)  # leaves: this step still began on the goal
    assert env.step(NOOP)[:2] == (12, 0.0)


def test_darkroom_moves_walls_and_truncation():
    env = gym.make(ROOM, size=3, goal=(0, 0), episode_len=6)
    obs, _ = env.reset()
    assert obs == 4
    seq = [(UP, 1), (UP, 1), (RIGHT, 2), (RIGHT, 2), (DOWN, 5), (LEFT, 4)]  # walls clip moves
    for t, (a, expect) in enumerate(seq):
        obs, r, term, trunc, _ = env.step(a)
        assert obs == expect and term is False and trunc == (t == 5)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(NOOP)
    with pytest.raises(ValueError, match="Discrete"):
        env.reset()
        env.step(5)


def test_darkroom_goal_switch_by_reset_options():
    env = gym.make(ROOM, size=5, goal=(0, 0))
    env.reset(options={"goal": (2, 3)})
    assert env.unwrapped.goal == (2, 3)
    assert [env.step(NOOP)[1] for _ in range(2)] == [0.0, 0.0]
    env.reset(options={"size": 5, "goal": [2, 1], "episode_len": 7})  # a whole task dict
    assert env.unwrapped.task == {"size": 5, "goal": [2, 1], "episode_len": 7}
    env.step(LEFT)
    assert env.step(NOOP)[1] == 1.0
    with pytest.raises(ValueError, match="size"):
        env.reset(options={"size": 7, "goal": 0})
    with pytest.raises(ValueError, match="colour"):
        env.reset(options={"colour": "red"})
    with pytest.raises(ValueError, match="goal"):
        env.reset(options={"goal": (2, 2)})
    assert env.unwrapped.goal == (2, 1)  # a refused switch changes nothing


# ---- Dark Key-to-Door ----------------------------------------------------------------------
def test_keytodoor_key_then_door():
    env = gym.make(KEY, size=3, key=(0, 0), door=(0, 2), episode_len=50)
    u = env.unwrapped
    env.reset(seed=0)
    u.set_state({**u.get_state(), "episode": {"cell": 1, "has_key": 0, "t": 0}})  # start at (0, 1)
    assert env.step(RIGHT)[:4] == (2, 0.0, False, False)  # door without the key: nothing
    assert env.step(LEFT)[:4] == (1, 0.0, False, False)
    assert env.step(LEFT)[:4] == (0 + 9, 1.0, False, False)  # picks up the key
    assert env.step(NOOP)[:4] == (9, 0.0, False, False)  # the key pays once
    assert env.step(RIGHT)[:4] == (1 + 9, 0.0, False, False)
    assert env.step(RIGHT)[:4] == (2 + 9, 1.0, True, False)  # door with the key: done
    with pytest.raises(RuntimeError):
        env.step(NOOP)


def test_keytodoor_random_start_and_truncation():
    env = gym.make(KEY, size=3, key=(1, 1), door=(2, 2), episode_len=4)
    env.reset(seed=3)
    starts = [env.reset()[0] for _ in range(2000)]
    counts = np.bincount(starts, minlength=18)
    assert counts[4] == counts[8] == 0 and counts[9:].sum() == 0  # never on key/door, never holding it
    allowed = [0, 1, 2, 3, 5, 6, 7]
    assert stats.chisquare(counts[allowed]).pvalue > 0.001
    env.reset(options={"key": (0, 0), "door": (0, 1)})
    for t in range(4):  # stays in the bottom row, never reaching the key
        obs, r, term, trunc, _ = env.step(DOWN)
        assert r == 0.0 and term is False and trunc == (t == 3)


def _keytodoor_value_iteration(size, key, door, episode_len):
    """Expected optimal return over the uniform start, by value iteration on (cell, has_key)."""
    n = size * size
    cells = np.arange(n)
    r, c = np.divmod(cells, size)
    nxt = np.stack([np.maximum(r - 1, 0) * size + c, r * size + np.minimum(c + 1, size - 1),
                    np.minimum(r + 1, size - 1) * size + c, r * size + np.maximum(c - 1, 0), cells], axis=1)
    k, d = key[0] * size + key[1], door[0] * size + door[1]
    V0, V1 = np.zeros(n), np.zeros(n)  # without / with the key
    for _ in range(episode_len):
        q1 = np.where(nxt == d, 1.0, V1[nxt])  # reaching the door with the key ends the episode
        q0 = np.where(nxt == k, 1.0 + V1[nxt], V0[nxt])
        V0, V1 = q0.max(axis=1), q1.max(axis=1)
    starts = [s for s in cells if s not in (k, d)]
    return V0[starts].mean()


@pytest.mark.parametrize("size,key,door,episode_len", [
    (9, (0, 8), (8, 0), 50), (9, (4, 4), (0, 0), 50), (3, (0, 0), (2, 2), 50), (2, (0, 0), (1, 1), 50),
    (17, (0, 16), (16, 0), 50), (17, (0, 0), (16, 16), 50), (9, (0, 8), (8, 0), 20), (5, (0, 4), (4, 0), 9),
])
def test_keytodoor_optimal_return_is_exact(size, key, door, episode_len):
    got = optimal_return(KEY, size=size, key=key, door=door, episode_len=episode_len)
    assert got == pytest.approx(_keytodoor_value_iteration(size, key, door, episode_len), abs=1e-12)
    assert 0.0 <= got <= 2.0


# ---- Chain (RiverSwim) ---------------------------------------------------------------------
def test_chain_model_is_osband_riverswim():
    P, R = Chain(n=6).transition_matrix(), Chain(n=6).reward_matrix()
    assert P.shape == (6, 2, 6) and np.allclose(P.sum(axis=2), 1.0)
    for s in range(6):
        assert P[s, 0, max(s - 1, 0)] == 1.0
    assert (P[0, 1, 0], P[0, 1, 1]) == pytest.approx((0.4, 0.6))
    for s in range(1, 5):
        assert (P[s, 1, s - 1], P[s, 1, s], P[s, 1, s + 1]) == pytest.approx((0.05, 0.6, 0.35))
    assert (P[5, 1, 4], P[5, 1, 5]) == pytest.approx((0.4, 0.6))
    expected_R = np.zeros((6, 2))
    expected_R[0, 0], expected_R[5, 1] = 0.005, 1.0
    assert np.array_equal(R, expected_R)
    m = Chain(n=6, mirrored=True)
    assert np.array_equal(m.transition_matrix(), P[::-1, ::-1, ::-1])
    assert np.array_equal(m.reward_matrix(), R[::-1, ::-1])
    assert m.start_state == 5 and Chain(n=6).start_state == 0
    assert m.optimal_return() == pytest.approx(Chain(n=6).optimal_return())


def _transition_counts(env_kwargs, steps, seed, p_right=0.75):
    env = gym.make(CHAIN, episode_len=10**9, **env_kwargs)
    n = env.unwrapped.n
    counts = np.zeros((n, 2, n), dtype=np.int64)
    rng = np.random.default_rng([seed, 99])  # not the env's stream: default_rng(seed) would equal it
    s, _ = env.reset(seed=seed)
    mirrored = env.unwrapped.mirrored
    for u in rng.random(steps):
        a = int(u < p_right) if not mirrored else int(u >= p_right)  # head for the far end
        s2, r, *_ = env.step(a)
        assert r == env.unwrapped.reward_matrix()[s, a]
        counts[s, a, s2] += 1
        s = s2
    return counts


@pytest.mark.parametrize("kwargs", [{"n": 6}, {"n": 6, "mirrored": True}, {"n": 2},
                                    {"n": 5, "p_forward": 0.45, "p_backward": 0.10}])
def test_chain_empirical_transitions_match_the_model(kwargs):
    P = Chain(**kwargs).transition_matrix()
    counts = _transition_counts(kwargs, 150_000, seed=1)
    for s in range(P.shape[0]):
        for a in range(2):
            n_sa = counts[s, a].sum()
            assert n_sa >= 2000, (s, a, n_sa)
            support = P[s, a] > 0
            assert counts[s, a, ~support].sum() == 0
            if support.sum() > 1:
                p = stats.chisquare(counts[s, a, support], n_sa * P[s, a, support]).pvalue
                assert p > 0.001, (s, a, counts[s, a], P[s, a])


def test_chain_chi_square_has_power_against_a_slightly_wrong_model():
    counts = _transition_counts({"n": 6}, 150_000, seed=1)
    wrong = Chain(n=6, p_forward=0.32, p_backward=0.05).transition_matrix()
    pvals = [stats.chisquare(counts[s, 1, wrong[s, 1] > 0], counts[s, 1].sum() * wrong[s, 1, wrong[s, 1] > 0]).pvalue
             for s in range(1, 5)]
    assert min(pvals) < 0.001


def test_chain_optimal_return_is_achieved_by_the_value_iteration_policy():
    env = Chain(n=6)
    V = env.optimal_values()
    P, R = env.transition_matrix(), env.reward_matrix()
    L = env.episode_len
    returns = []
    env.reset(seed=0)
    for _ in range(3000):
        s, ret = env.reset()[0], 0.0
        for t in range(L):
            a = int(np.argmax(R[s] + P[s] @ V[L - t - 1]))
            s, r, term, trunc, _ = env.step(a)
            ret += r
        assert trunc
        returns.append(ret)
    returns = np.array(returns)
    se = returns.std() / np.sqrt(len(returns))
    assert abs(returns.mean() - env.optimal_return()) < 4 * se
    assert env.optimal_return() > 0.005 * L  # swimming upstream beats staying at the small reward


def test_chain_default_episode_len_lets_the_far_end_be_reached():
    for n in range(2, 51):
        env = Chain(n=n)
        assert env.episode_len == default_episode_len(n) == max(20, 5 * n)
        P = env.transition_matrix()[:, 1, :].copy()  # always swim against the current
        P[n - 1] = 0.0
        P[n - 1, n - 1] = 1.0  # absorb at the far end
        dist = np.zeros(n)
        dist[0] = 1.0
        for _ in range(env.episode_len):
            dist = dist @ P
        assert dist[n - 1] >= 0.97, n
    env = gym.make(CHAIN, n=8, episode_len=9)
    env.reset(options={"episode_len": None})  # back to the default
    assert env.unwrapped.episode_len == 40


# ---- Bandit --------------------------------------------------------------------------------
def test_bandit_rewards_regret_and_one_pull_episodes():
    means = [0.1, 0.5, 0.85]
    env = gym.make(BANDIT, means=means)
    assert env.reset(seed=0) == (0, {})
    wins = np.zeros(3)
    n = 6000
    for i in range(3 * n):
        a = i % 3
        obs, r, term, trunc, info = env.step(a)
        assert obs == 0 and term is True and trunc is False and r in (0.0, 1.0)
        assert info["regret"] == pytest.approx(0.85 - means[a])
        wins[a] += r
        env.reset()
    for a in range(3):
        assert stats.binomtest(int(wins[a]), n, means[a]).pvalue > 0.001
    with pytest.raises(RuntimeError):
        env.step(0)
        env.step(0)
    assert optimal_return(BANDIT, means=means) == 0.85


def test_bandit_means_drawn_from_the_seed():
    a, b = gym.make(BANDIT, n_arms=7), gym.make(BANDIT, n_arms=7)
    with pytest.raises(ValueError, match="means"):
        a.unwrapped.optimal_return()
    a.reset(seed=5)
    b.reset(seed=5)
    m = a.unwrapped.means
    assert len(m) == 7 and all(0 <= x <= 1 for x in m) and m == b.unwrapped.means
    a.step(0)
    a.reset()
    assert a.unwrapped.means == m  # unseeded resets keep the bandit
    a.reset(seed=6)
    assert a.unwrapped.means != m
    a.reset(seed=5)
    assert a.unwrapped.means == m
    # same seed, same bandit and same rewards, whatever happened before
    assert _rollout(a, [i % 7 for i in range(50)], seed=5) == _rollout(b, [i % 7 for i in range(50)], seed=5)
    a.reset(options={"means": [0.0] * 6 + [1.0]})
    assert a.step(6)[1] == 1.0
    a.reset(seed=9)
    assert a.unwrapped.means == [0.0] * 6 + [1.0]  # given means are never redrawn
    with pytest.raises(ValueError, match="n_arms"):
        a.reset(options={"means": [0.5] * 3})


# ---- seeding and checkpoints ---------------------------------------------------------------
RANDOM_ENVS = [(BANDIT, {"n_arms": 4}), (KEY, {"size": 4}), (CHAIN, {"n": 5}), (ROOM, {"size": 5, "goal": 3})]


@pytest.mark.parametrize("env_id,kwargs", RANDOM_ENVS, ids=[p[0] for p in RANDOM_ENVS])
def test_seeded_reset_reproduces(env_id, kwargs):
    n_actions = gym.make(env_id, **kwargs).action_space.n
    actions = np.random.default_rng(0).integers(n_actions, size=400).tolist()
    runs = [_rollout(gym.make(env_id, **kwargs), actions, seed=s) for s in (11, 11, 12)]
    assert runs[0] == runs[1]
    if env_id != ROOM:  # Dark Room has no randomness
        assert runs[0] != runs[2]
    env = gym.make(env_id, **kwargs)
    _rollout(env, actions[:37], seed=3)
    assert _rollout(env, actions, seed=11) == runs[0]  # a seeded reset forgets the past


@pytest.mark.parametrize("env_id,kwargs", RANDOM_ENVS, ids=[p[0] for p in RANDOM_ENVS])
@pytest.mark.parametrize("k", [0, 1, 13, 150])
def test_get_state_set_state_resumes_bit_identically(env_id, kwargs, k):
    env = gym.make(env_id, **kwargs)
    n_actions = env.action_space.n
    actions = np.random.default_rng(k).integers(n_actions, size=k + 200).tolist()
    env.reset(seed=7)
    if env_id == ROOM:
        env.reset(options={"goal": 21})  # the task switch is part of the state
    _rollout(env, actions[:k], first_reset=False)
    state = json.loads(json.dumps(env.unwrapped.get_state()))  # survives a JSON checkpoint
    rest = _rollout(env, actions[k:], first_reset=False)
    fresh = gym.make(env_id, **kwargs)
    fresh.reset(seed=12345)  # gymnasium's OrderEnforcing wrapper wants one reset before any step
    fresh.get_wrapper_attr("set_state")(state)
    assert _rollout(fresh, actions[k:], first_reset=False) == rest
    # a never-reset fresh env can also be restored from a state taken before any reset
    blank = gym.make(env_id, **kwargs)
    blank_state = json.loads(json.dumps(blank.unwrapped.get_state()))
    other = gym.make(env_id, **kwargs)
    other.unwrapped.set_state(blank_state)
    assert other.unwrapped.get_state() == blank_state


def test_set_state_refuses_another_size_or_env():
    state = gym.make(ROOM, size=5, goal=0).unwrapped.get_state()
    with pytest.raises(ValueError, match="size"):
        gym.make(ROOM, size=7, goal=0).unwrapped.set_state(state)
    with pytest.raises(ValueError, match="DarkRoom"):
        gym.make(KEY, size=5).unwrapped.set_state(state)


# ---- task splits ---------------------------------------------------------------------------
def _key(task):
    return json.dumps(task, sort_keys=True)


@pytest.mark.parametrize("size,n_train,n_test", [(9, 64, 16), (3, 6, 2), (2, 2, 1), (17, 230, 58)])
def test_darkroom_split_sizes_disjoint_and_complete(size, n_train, n_test):
    split = task_split(ROOM, seed=0, size=size)
    assert (len(split.train), len(split.test)) == (n_train, n_test)
    train, test = {_key(t) for t in split.train}, {_key(t) for t in split.test}
    assert len(train) == n_train and len(test) == n_test and not train & test
    goals = {tuple(t["goal"]) for t in split.train + split.test}
    assert goals == {(r, c) for r in range(size) for c in range(size)} - {(size // 2, size // 2)}
    for t in split.test[:3]:
        gym.make(ROOM, **t)


def test_splits_are_seeded():
    for env_id in (ROOM, KEY, CHAIN, BANDIT):
        kw = {"n_train": 20, "n_test": 5} if env_id == BANDIT else {}
        a, b, c = (task_split(env_id, seed=s, **kw) for s in (0, 0, 1))
        assert a == b and a != c
        assert TaskSplit.from_dict(json.loads(json.dumps(a.to_dict()))) == a


def test_bandit_split():
    split = task_split(BANDIT, seed=3, n_arms=64, n_train=50, n_test=10)
    assert (len(split.train), len(split.test)) == (50, 10)
    assert not {_key(t) for t in split.train} & {_key(t) for t in split.test}
    means = np.array([t["means"] for t in split.train + split.test])
    assert means.shape == (60, 64) and means.min() >= 0 and means.max() <= 1
    assert stats.kstest(means.ravel(), "uniform").pvalue > 0.001
    tiny = task_split(BANDIT, seed=0, n_arms=2, n_train=1, n_test=1)
    env = gym.make(BANDIT, **tiny.test[0])
    assert env.action_space.n == 2
    assert optimal_return(BANDIT, **tiny.test[0]) == max(tiny.test[0]["means"])


def test_keytodoor_split():
    split = task_split(KEY, seed=0, size=3)
    assert (len(split.train), len(split.test)) == (72 - 14, 14)
    train = {_key(t) for t in split.train}
    assert not train & {_key(t) for t in split.test}
    assert all(t["key"] != t["door"] for t in split.train + split.test)
    big = task_split(KEY, seed=0, size=17, n_train=100, n_test=20)
    assert (len(big.train), len(big.test)) == (100, 20)
    assert not {_key(t) for t in big.train} & {_key(t) for t in big.test}
    env = gym.make(KEY, size=17)
    env.reset(seed=0, options=big.test[0])
    assert env.unwrapped.task == big.test[0]


@pytest.mark.parametrize("n", [2, 6, 50])
def test_chain_split(n):
    split = task_split(CHAIN, seed=0, n=n)
    assert (len(split.train), len(split.test)) == (6, 2)
    keys = [_key(t) for t in split.train + split.test]
    assert len(set(keys)) == 8 == 2 * len(CHAIN_SLIPS)
    assert {t["mirrored"] for t in split.train + split.test} == {False, True}
    for t in split.train + split.test:
        assert t["episode_len"] == default_episode_len(n)
        assert optimal_return(CHAIN, **t) > t["small_reward"] * t["episode_len"]


# ---- bad kwargs ----------------------------------------------------------------------------
BAD = [
    (ROOM, {"goal": (9, 0)}, "goal"), (ROOM, {"goal": 81}, "goal"), (ROOM, {"goal": (4, 4)}, "goal"),
    (ROOM, {"size": 3, "goal": 4}, "goal"), (ROOM, {"size": 1}, "size"), (ROOM, {"episode_len": 0}, "episode_len"),
    (ROOM, {"goal": "corner"}, "goal"),
    (BANDIT, {"means": [0.2, 1.5]}, r"means\[1\]"), (BANDIT, {"means": [0.5]}, "n_arms"),
    (BANDIT, {"n_arms": 1}, "n_arms"), (BANDIT, {"means": [0.1, 0.2], "n_arms": 3}, "n_arms"),
    (BANDIT, {"means": [0.1, float("nan")]}, r"means\[1\]"),
    (KEY, {"key": (1, 1), "door": (1, 1)}, "key"), (KEY, {"key": (0, 9)}, "key"), (KEY, {"door": -1}, "door"),
    (CHAIN, {"n": 1}, "n"), (CHAIN, {"p_forward": 0.99}, "p_forward"), (CHAIN, {"p_stay_end": 1.2}, "p_stay_end"),
    (CHAIN, {"mirrored": "yes"}, "mirrored"), (CHAIN, {"episode_len": -3}, "episode_len"),
]


@pytest.mark.parametrize("env_id,kwargs,name", BAD, ids=[f"{b[0].split('/')[1]}-{b[2]}-{i}" for i, b in enumerate(BAD)])
def test_bad_kwargs_raise_a_one_line_value_error_naming_the_kwarg(env_id, kwargs, name):
    with pytest.raises(ValueError, match=name) as err:
        gym.make(env_id, **kwargs)
    assert "\n" not in str(err.value)


def test_task_split_rejects_bad_input():
    with pytest.raises(ValueError, match="env_id"):
        task_split("hypospace/Nope-v0")
    with pytest.raises(ValueError, match="colour"):
        task_split(ROOM, colour=1)
    with pytest.raises(ValueError, match="test_fraction"):
        task_split(ROOM, test_fraction=1.0)
    with pytest.raises(ValueError, match="n_test"):
        task_split(BANDIT, n_test=0)


def test_optimal_actions_are_the_shortest_paths_and_the_best_arms():
    env = envs.make("hypospace/DarkRoom-v0", size=7, goal=[0, 5], episode_len=20)
    opt = env.unwrapped.optimal_actions()
    assert opt.shape == (49, 5) and opt.dtype == bool
    for first in np.flatnonzero(opt[env.unwrapped.start[0] * 7 + env.unwrapped.start[1]]):
        obs, _ = env.reset(seed=0)
        ret, a = 0.0, int(first)
        for _ in range(20):          # any optimal choice at every step earns the optimal return
            obs, r, _, trunc, _ = env.step(a)
            ret += r
            if trunc:
                break
            a = int(np.flatnonzero(opt[obs])[-1])
        assert ret == env.unwrapped.optimal_return() == 20 - 5
    assert np.array_equal(np.flatnonzero(opt[5]), [0, 4])  # on the goal (top row): up into the wall, or stay
    bandit = envs.make("hypospace/Bandit-v0", means=[0.2, 0.9, 0.9, 0.1])
    assert np.array_equal(bandit.unwrapped.optimal_actions(), [[False, True, True, False]])
