"""Implementation variants of the grammar (``Grammar(..., variants=...)``), each against a teacher
written in plain Python the way public code writes it:

* ``act_first`` -- Q-learning whose loop draws the next action before updating (the SARSA loop
  shape applied to a max target). The program equals the teacher's action probabilities to
  1e-12; the textbook-order program does not; the mixture over the wider grammar identifies
  the teacher (KL < 0.01 bits over the last 500 steps, class mass > 0.9, the bound holding,
  no misspecification alarm).
* ``truncation`` -- Q-learning written against ``done = terminated or truncated``, which treats
  the end of a time-limited episode as terminal: the same checks on a Dark Room, whose
  episodes all end by the time limit.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401
from experiments.protocol import score_predictions
from learners.protocols import Transition
from learners.recorder import record
from learners.solomonoff.checks import assert_bound, reference_probs
from learners.solomonoff.grammar import Grammar
from learners.solomonoff.mixture import Mixture
from learners.solomonoff.parser import ProgramParseError, parse_program
from learners.solomonoff.printer import program_source

#: A chain, where "left" at the end stays put: the next state often equals the current one, which
#: is where the order of acting and updating shows (~200 of 6000 steps; on a 4x4 Dark Room ~3)
ENV = ("hypospace/Chain-v0", {"n": 4})
ACT_FIRST = "QLearning(init=0, alpha=1/2, gamma=1/2, explore=eps_greedy(1/2), order=act_first)"
TEXTBOOK = "QLearning(init=0, alpha=1/2, gamma=1/2, explore=eps_greedy(1/2))"


class ActFirstQLearning:
    """Tabular Q-learning in a SARSA-shaped loop, as many tutorials write it::

        a = choose(s)
        loop: s2, r = step(a); a2 = choose(s2); Q[s, a] += alpha (r + gamma max Q[s2] - Q[s, a]); s, a = s2, a2

    so ``a2`` comes from the values *before* the update (the textbook updates first). Epsilon-
    greedy, ties shared uniformly; no bootstrap after a terminal step, the max after a time limit."""

    def __init__(self, n_states: int, n_actions: int, alpha: float, gamma: float, epsilon: float, seed: int):
        self.Q = np.zeros((n_states, n_actions))
        self.n_actions, self.alpha, self.gamma, self.epsilon = n_actions, alpha, gamma, epsilon
        self.rng = np.random.default_rng(seed)
        self.chosen: tuple[int, np.ndarray] | None = None   # (s2, the distribution a2 is drawn from)

    def policy(self, s: int) -> np.ndarray:
        q = self.Q[s]
        greedy = q == q.max()
        return self.epsilon / self.n_actions + (1.0 - self.epsilon) * greedy / np.count_nonzero(greedy)

    def action_probs(self, obs) -> np.ndarray:
        if self.chosen is not None and self.chosen[0] == int(obs):
            return self.chosen[1]
        return self.policy(int(obs))

    def values(self, obs) -> np.ndarray:
        return self.Q[int(obs)].copy()

    def weights(self) -> dict[str, np.ndarray]:
        return {"Q": self.Q.copy()}

    def observe(self, t: Transition, *, intervention: bool = True) -> None:
        s, a, r, s2 = int(t.obs), int(t.action), float(t.reward), int(t.next_obs)
        done = t.terminated or t.truncated
        self.chosen = None if done else (s2, self.policy(s2))      # a2's distribution, before the update
        target = r if t.terminated else r + self.gamma * self.Q[s2].max()
        self.Q[s, a] += self.alpha * (target - self.Q[s, a])


def _history(seed: int, episodes: int, env=None, teacher_class=None):
    """A history of a plain-Python teacher (alpha = gamma = epsilon = 1/2)."""
    env_id, kw = env or ENV
    e = gym.make(env_id, **kw)
    teacher = (teacher_class or ActFirstQLearning)(int(e.observation_space.n), int(e.action_space.n), 0.5, 0.5, 0.5, seed)
    return record(teacher, env_id, env_kwargs=kw, episodes=episodes, seed=seed + 7)


def _program_probs(src: str, grammar: Grammar, hist) -> np.ndarray:
    return reference_probs(src, grammar, hist, 2.0 ** -10, raw=True)


def test_act_first_program_is_the_act_first_teacher():
    hist = _history(0, episodes=100)   # 2000 steps
    g = Grammar(4, int(hist.n_actions), variants=("act_first",))
    tp = np.asarray(hist.teacher_probs, dtype=np.float64)
    assert np.abs(_program_probs(ACT_FIRST, g, hist) - tp).max() <= 1e-12
    # the textbook order is another function on this history (it differs where s' = s)
    differ = np.abs(_program_probs(TEXTBOOK, g, hist) - tp).max(axis=1) > 1e-3
    assert differ.sum() >= 10


def test_act_first_code_and_text():
    g, plain = Grammar(16, 5, variants=("act_first",)), Grammar(16, 5)
    p, q = parse_program(ACT_FIRST), parse_program(TEXTBOOK)
    assert parse_program(program_source(p)) == p and p.act_first and not q.act_first
    assert g.bits(p) == g.bits(q) == plain.bits(q) + 1          # one order bit, '1' or '0'
    sarsa = parse_program("SARSA(init=0, alpha=1/2, gamma=1/2, explore=eps_greedy(1/2))")
    assert g.bits(sarsa) == plain.bits(sarsa)                      # SARSA always acts first: no bit
    for prog in (p, q, sarsa):
        word = g.encode(prog)
        assert len(word) == g.bits(prog) and g.decode(word) == (prog, len(word))
    with pytest.raises(ValueError, match="variants"):
        plain.bits(p)
    with pytest.raises(ProgramParseError, match="act_first is for other targets"):
        parse_program("SARSA(init=0, alpha=1/2, gamma=1/2, explore=greedy, order=act_first)")



DARKROOM = ("hypospace/DarkRoom-v0", {"size": 4, "goal": [0, 3]})
DONE_TERMINAL = "QLearning(init=0, alpha=1/2, gamma=1/2, explore=eps_greedy(1/2), truncation=terminal)"


class DoneQLearning(ActFirstQLearning):
    """Textbook-order Q-learning written against ``done = terminated or truncated``::

        s2, r, terminated, truncated = step(a); done = terminated or truncated
        Q[s, a] += alpha (r + (0 if done else gamma max Q[s2]) - Q[s, a])"""

    def observe(self, t: Transition, *, intervention: bool = True) -> None:
        s, a, r, s2 = int(t.obs), int(t.action), float(t.reward), int(t.next_obs)
        done = t.terminated or t.truncated
        target = r if done else r + self.gamma * self.Q[s2].max()
        self.Q[s, a] += self.alpha * (target - self.Q[s, a])


def _done_history(seed: int, episodes: int):
    return _history(seed, episodes, DARKROOM, DoneQLearning)


def test_truncation_terminal_program_is_the_done_teacher():
    hist = _done_history(0, episodes=100)
    g = Grammar(16, int(hist.n_actions), variants=("truncation",))
    tp = np.asarray(hist.teacher_probs, dtype=np.float64)
    assert np.abs(_program_probs(DONE_TERMINAL, g, hist) - tp).max() <= 1e-12
    assert (np.abs(_program_probs(TEXTBOOK, g, hist) - tp).max(axis=1) > 1e-3).sum() >= 10
    p, q = parse_program(DONE_TERMINAL), parse_program(TEXTBOOK)
    assert g.bits(p) == g.bits(q) == Grammar(16, 5).bits(q) + 1
    assert g.decode(g.encode(p)) == (p, g.bits(p))


@pytest.mark.parametrize("variant", ["act_first", "truncation"])
def test_mixture_identifies_the_variant_teacher(variant):
    """6000 steps of the plain-Python teacher: the mixture over the grammar with the variant
    puts its mass on the variant's program, not on the plain grammar's nearest one."""
    (env_id, kw), program, hist = {"act_first": (ENV, ACT_FIRST, lambda: _history(0, 300)),
                                   "truncation": (DARKROOM, DONE_TERMINAL, lambda: _done_history(0, 300))}[variant]
    mix = Mixture.for_env(env_id, 16, env_kwargs=kw, variants=(variant,))
    hist = hist()
    probs = mix.predict_history(hist, watch=[program, TEXTBOOK])
    assert_bound(mix, hist, teacher=program, programs=[program])
    assert score_predictions(probs, hist).kl_bits[-500:].mean() < 0.01
    mass, textbook_mass = mix.watch_trace[-1]
    assert mass > 0.9 and textbook_mass < 0.01, (mass, textbook_mass, mix.format_top(3))
    assert not mix.diagnostics()["misspecification"]["misspecified"]
