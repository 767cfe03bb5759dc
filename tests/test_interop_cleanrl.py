"""A CleanRL-style epsilon-greedy loop recorded step by step: the stored distribution is the one
the loop's own sampling code draws from (uniform warm-up, schedule, ties), and loops that do
not act as declared are refused."""
from __future__ import annotations

import random

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from scipy import stats

import envs  # noqa: F401  (registers hypospace/ envs)
from experiments.protocol import UniformRandom, teacher_forced
from learners import HistoryError
from learners.interop.recorder import EpsilonGreedyRecorder, epsilon_greedy_probs

ENV, KW = "hypospace/DarkRoom-v0", {"size": 4, "goal": [3, 0]}
S, A = 16, 5


def linear_schedule(start_e: float, end_e: float, duration: int, t: int) -> float:
    """CleanRL's dqn.py schedule."""
    slope = (end_e - start_e) / duration
    return max(slope * t + start_e, end_e)


def loop_action(rng: random.Random, space: gym.Space, q: th.Tensor, epsilon: float) -> int:
    """CleanRL's action choice: uniform with probability epsilon, else torch.argmax."""
    if rng.random() < epsilon:
        return int(space.sample())
    return int(th.argmax(q).item())


def cleanrl_style_run(steps: int = 1500, learning_starts: int = 200, seed: int = 0) -> EpsilonGreedyRecorder:
    """A one-hot linear Q-network trained by one TD(0) step per environment step."""
    env = gym.make(ENV, **KW)
    rng = random.Random(seed)
    th.manual_seed(seed)
    env.action_space.seed(seed)
    q_net = th.nn.Linear(S, A)
    opt = th.optim.SGD(q_net.parameters(), lr=0.5)
    rec = EpsilonGreedyRecorder(A, metadata={"env_id": ENV, "env_kwargs": KW, "teacher": {"teacher": "cleanrl_style"}})
    obs, _ = env.reset(seed=seed)
    for step in range(steps):
        eps = 1.0 if step < learning_starts else linear_schedule(1.0, 0.05, steps // 2, step)
        if step % 500 == 0:
            rec.snapshot({k: v.detach().numpy() for k, v in q_net.state_dict().items()})
        q = q_net(th.nn.functional.one_hot(th.tensor(obs), S).float())
        a = loop_action(rng, env.action_space, q.detach(), eps)
        nxt, r, term, trunc, _ = env.step(a)
        rec.record(obs, a, r, term, trunc, nxt, epsilon=eps, q_values=q.detach().numpy())
        if step >= learning_starts:
            with th.no_grad():
                target = r + (0.0 if term else 0.9 * q_net(th.nn.functional.one_hot(th.tensor(nxt), S).float()).max())
            loss = (q[a] - target) ** 2
            opt.zero_grad()
            loss.backward()
            opt.step()
        obs = env.reset()[0] if (term or trunc) else nxt
    return rec


def test_recorded_loop_gives_a_valid_history_with_its_schedule():
    rec = cleanrl_style_run()
    h = rec.to_history()
    p = np.asarray(h.teacher_probs)
    assert len(h) == 1500 and h.n_episodes == 75 and h.snapshot_steps == [0, 500, 1000]
    assert np.all(p[:200] == 1 / A)
    eps = np.array([linear_schedule(1.0, 0.05, 750, t) for t in range(200, 1500)])
    assert np.allclose(p[200:].min(1) * A, eps, atol=1e-12)
    assert np.array_equal(p[200:].argmax(1), np.asarray(h.teacher_values)[200:].argmax(1))
    assert np.all(h.truncated == (np.arange(1500) % 20 == 19)) and len(h.final_obs_step) == 75  # successors kept
    # The recorded distribution is what the loop drew from: greedy actions taken as often as expected.
    g = p[np.arange(len(h)), p.argmax(1)][200:]
    took = (np.asarray(h.action) == p.argmax(1))[200:]
    assert abs((took.sum() - g.sum()) / np.sqrt(np.sum(g * (1 - g)))) < 4.5
    # It learned: the last episodes return more than the warm-up ones.
    ret = h.episode_returns()
    assert ret[-10:].mean() > ret[:10].mean() + 3
    # Q1 of the uniform control on it is exactly log2(A) bits of log-loss per step.
    assert np.allclose(teacher_forced(UniformRandom(A), h).log_loss_bits, np.log2(A))


@pytest.mark.parametrize("q,eps", [([0.1, 0.5, -0.2, 0.3, 0.0], 0.3),    # one maximum
                                   ([1.0, 3.0, 3.0, 0.0, 3.0], 0.2),     # a three-way tie: torch takes 1
                                   ([0.0] * 5, 0.0)])                    # all tied, greedy: always 0
def test_probs_reproduce_the_loops_draws(q, eps):
    p = epsilon_greedy_probs(q, eps)
    rng, space = random.Random(7), gym.spaces.Discrete(A, seed=8)
    draws = np.array([loop_action(rng, space, th.tensor(q), eps) for _ in range(5000)])
    counts = np.bincount(draws, minlength=A)
    assert np.all(counts[p == 0] == 0)
    keep = p > 0
    if keep.sum() > 1:
        assert stats.chisquare(counts[keep], p[keep] * len(draws)).pvalue > 1e-3


def test_uniform_tie_breaking_for_loops_that_break_ties_at_random():
    q = np.array([2.0, 0.0, 2.0, 1.0, 2.0])
    p = epsilon_greedy_probs(q, 0.1, ties="uniform")
    assert p == pytest.approx([0.02 + 0.3, 0.02, 0.02 + 0.3, 0.02, 0.02 + 0.3])
    rng = np.random.default_rng(0)
    best = np.flatnonzero(q == q.max())
    draws = np.array([rng.integers(A) if rng.random() < 0.1 else rng.choice(best) for _ in range(5000)])
    assert stats.chisquare(np.bincount(draws, minlength=A), p * 5000).pvalue > 1e-3


def test_a_loop_that_does_not_act_as_declared_is_refused():
    rec = EpsilonGreedyRecorder(A)
    with pytest.raises(HistoryError, match="step 0 has probability 0"):
        rec.record(0, 2, 0.0, False, False, 1, epsilon=0.0, q_values=[1, 0, 0, 0, 0])
    with pytest.raises(HistoryError, match="q_values missing at step 0"):
        rec.record(0, 2, 0.0, False, False, 1, epsilon=0.5)
    with pytest.raises(HistoryError, match="3 actions"):
        rec.record(0, 2, 0.0, False, False, 1, epsilon=0.5, q_values=[0, 1, 2])
    with pytest.raises(ValueError, match="epsilon"):
        epsilon_greedy_probs([0, 1], 1.5)
    no_values = EpsilonGreedyRecorder(A, record_values=False)
    no_values.record(0, 4, 0.0, False, False, 1, epsilon=1.0)   # warm-up without a network
    h = no_values.to_history()
    assert h.teacher_values is None and h.next_obs(0) == 1 and np.all(h.teacher_probs == 0.2)
