"""The mixture says when a teacher is outside its class: no alarm on teachers inside it, an alarm
(``MisspecificationWarning``, with the step it fired at) on a DQN and on a SARSA written the way
tutorials write it (its truncated episodes bootstrap on a drawn, never taken, action).

Measured with ``pytest -m slow -s tests/test_misspecification.py`` (prints every figure):
the false-alarm count over 24 teachers drawn from the grammar (Dark Room 4x4 and Chain n=4,
6000 steps each) and the steps at which the DQN and out-of-grammar SARSA histories fire.
"""
from __future__ import annotations

import math
import warnings

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401
from learners.recorder import record
from learners.solomonoff.draw import draw_program, teacher_for
from learners.solomonoff.misspecification import MisspecificationWarning
from learners.solomonoff.mixture import Mixture
from learners.solomonoff.parser import parse_program
from learners.solomonoff.printer import program_source
from learners.teachers.base import make_teacher

DARKROOM4 = ("hypospace/DarkRoom-v0", {"size": 4, "goal": [0, 3]})   # the ``darkroom4_mixture`` env
FAMILIES = ("QLearning", "SARSA", "ExpectedSARSA")
EXPLORES = ("eps_greedy", "softmax", "count_bonus")


class DrawFirstSarsa:
    """SARSA as tutorials write it, in plain Python: the next action is drawn before the update,
    and the last step of an episode cut by the time limit bootstraps on an action drawn there
    (never taken). Epsilon-greedy with ties shared uniformly, constant step size."""

    def __init__(self, n_states: int, n_actions: int, alpha: float, gamma: float, epsilon: float, seed: int):
        self.Q = np.zeros((n_states, n_actions))
        self.n_actions, self.alpha, self.gamma, self.epsilon = n_actions, alpha, gamma, epsilon
        self.rng = np.random.default_rng(seed)
        self.pending = None   # (s, a, r, s2): waiting for the action drawn at s2

    def action_probs(self, obs) -> np.ndarray:
        q = self.Q[int(obs)]
        greedy = q == q.max()
        return self.epsilon / self.n_actions + (1.0 - self.epsilon) * greedy / greedy.sum()

    def values(self, obs) -> np.ndarray:
        return self.Q[int(obs)].copy()

    def weights(self) -> dict[str, np.ndarray]:
        return {"Q": self.Q.copy()}

    def _update(self, s: int, a: int, target: float) -> None:
        self.Q[s, a] += self.alpha * (target - self.Q[s, a])

    def observe(self, t, *, intervention: bool = True) -> None:
        s, a, r, s2 = int(t.obs), int(t.action), float(t.reward), int(t.next_obs)
        if self.pending is not None:    # a, drawn at the pending step's s2 before its update
            ps, pa, pr, ps2 = self.pending
            self._update(ps, pa, pr + self.gamma * self.Q[ps2, a])
            self.pending = None
        if t.terminated:
            self._update(s, a, r)
        elif t.truncated:
            a2 = int(self.rng.choice(self.n_actions, p=self.action_probs(s2)))
            self._update(s, a, r + self.gamma * self.Q[s2, a2])
        else:
            self.pending = (s, a, r, s2)


def _condition(base: Mixture, hist):
    mix = base.clone()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MisspecificationWarning)
        mix.predict_history(hist)
    fired = [w for w in caught if issubclass(w.category, MisspecificationWarning)]
    return mix, mix.diagnostics()["misspecification"], fired


def _drawn(base: Mixture, family: str, seed: int, budget: float = 16):
    rng = np.random.default_rng([seed, sum(map(ord, family))])
    return draw_program(base.grammar, family, rng, max_bits=budget, explore_kinds=EXPLORES)


def _in_class_run(base: Mixture, env_id: str, kw: dict, prog, seed: int, episodes: int):
    env = gym.make(env_id, **kw)
    name, opts = teacher_for(prog, bandit=base.grammar.bandit)
    teacher = make_teacher(name, env.observation_space, env.action_space, seed=seed, **opts)
    return _condition(base, record(teacher, env_id, env_kwargs=kw, episodes=episodes, seed=seed + 7))


def _dqn_history(seed: int, probs: bool = True):
    env_id, kw = DARKROOM4
    env = gym.make(env_id, **kw)
    teacher = make_teacher("dqn", env.observation_space, env.action_space, seed=seed, preset="smoke")
    hist = record(teacher, env_id, env_kwargs=kw, steps=2000, seed=seed)
    if not probs:   # as a history recorded elsewhere, without the teacher's probabilities
        hist.teacher_probs = np.full_like(hist.teacher_probs, np.nan)
    return hist


def _draw_first_history(seed: int, episodes: int = 300):
    env_id, kw = DARKROOM4
    env = gym.make(env_id, **kw)
    teacher = DrawFirstSarsa(int(env.observation_space.n), int(env.action_space.n), 0.5, 0.5, 0.5, seed)
    return record(teacher, env_id, env_kwargs=kw, episodes=episodes, seed=seed + 7)


#: The grammar's program closest to ``DrawFirstSarsa(0.5, 0.5, 0.5)``: it differs only in what a
#: truncated step bootstraps on (the expectation, not a drawn action).
NEAREST = "SARSA(init=0, alpha=1/2, gamma=1/2, explore=eps_greedy(1/2))"


def test_teachers_in_the_class_raise_no_alarm(darkroom4_mixture):
    env_id, kw = DARKROOM4
    for family in FAMILIES:
        prog = _drawn(darkroom4_mixture, family, 0)
        mix, rep, fired = _in_class_run(darkroom4_mixture, env_id, kw, prog, 0, episodes=150)
        assert not fired and not rep["misspecified"], (program_source(prog), rep)
        # the regret test is what makes an alarm impossible here: the bound, with the smoothing
        assert rep["regret_bits"] <= rep["code_bits_max"] + rep["steps"] * -math.log2(1 - mix.smoothing)
        assert rep["evidence_for_alternative_bits"] < rep["allowance_bits"]


def test_dqn_history_is_flagged(darkroom4_mixture):
    """A DQN (an MLP on one-hot observations) is outside the class by design."""
    hist = _dqn_history(0)
    mix, rep, fired = _condition(darkroom4_mixture, hist)
    assert len(fired) == 1 and rep["misspecified"] and rep["fired_at_step"] <= 1000
    assert "outside the mixture's program class" in str(fired[0].message)
    assert mix.diagnostics()["map_mass"] > 0   # the posterior alone would not have told
    # without the teacher's probabilities, the alternatives (here: counting) still catch it
    _, rep2, fired2 = _condition(darkroom4_mixture, _dqn_history(0, probs=False))
    assert len(fired2) == 1 and rep2["fired_by"] == "alternatives" and rep2["regret_bits"] is None


def test_out_of_grammar_sarsa_is_flagged(darkroom4_mixture):
    """The posterior still settles on the nearest program (its class mass goes above 0.9): only
    the check says the teacher is not it."""
    base = darkroom4_mixture
    assert base.class_info(NEAREST)["hypotheses"], "the nearest program must be in the space"
    mix, rep, fired = _condition(base, _draw_first_history(0))
    assert len(fired) == 1 and rep["fired_by"] == "regret" and rep["fired_at_step"] <= 2000, rep
    assert rep["regret_bits"] > 5 * rep["allowance_bits"]
    assert mix.class_mass(NEAREST) > 0.9


def test_in_class_bandit_teacher_raises_no_alarm():
    env_id, kw = "hypospace/Bandit-v0", {"means": [0.2, 0.5, 0.8, 0.35]}
    base = Mixture.for_env(env_id, 13, env_kwargs=kw, max_kt=18, probe_length=300)
    _, rep, fired = _in_class_run(base, env_id, kw, parse_program("UCB1(c=2)"), 1, episodes=1500)
    assert not fired and rep["regret_bits"] < rep["allowance_bits"]


@pytest.mark.slow
def test_false_alarm_rate_and_detection_slow(darkroom4_mixture):
    """>= 20 teachers drawn from the grammar, 6000 Dark Room / 3000 Chain steps each: no alarm.
    DQN and the out-of-grammar SARSA, 3 seeds each: an alarm, at the step printed."""
    rows = []
    chain = ("hypospace/Chain-v0", {"n": 4})
    chain_base = Mixture.for_env(chain[0], 16, env_kwargs=chain[1])
    for env_id, kw, base, seeds, episodes in ((*DARKROOM4, darkroom4_mixture, range(6), 300),
                                              (*chain, chain_base, range(2), 150)):
        for seed in seeds:
            for family in FAMILIES:
                prog = _drawn(base, family, seed)
                _, rep, fired = _in_class_run(base, env_id, kw, prog, seed, episodes)
                rows.append((env_id, program_source(prog), rep["steps"], rep["regret_bits"], rep["allowance_bits"],
                             rep["evidence_for_alternative_bits"], rep["fired_at_step"]))
    print(f"\nin-class teachers: {len(rows)}; alarms: {sum(r[-1] is not None for r in rows)}")
    for r in rows:
        print(f"  {r[0]:24s} {r[1]:86s} T={r[2]} regret={r[3]:.1f} alternatives={r[5]:.1f} allowance={r[4]:.1f} "
              f"fired={r[6]}")
    assert len(rows) >= 20 and all(r[-1] is None for r in rows)
    detections = []
    for seed in range(3):
        for name, hist in ((f"dqn seed {seed}", _dqn_history(seed)),
                           (f"dqn seed {seed}, no teacher probs", _dqn_history(seed, probs=False)),
                           (f"draw-first sarsa seed {seed}", _draw_first_history(seed))):
            _, rep, fired = _condition(darkroom4_mixture, hist)
            detections.append((name, rep["fired_at_step"], rep["fired_by"], rep["steps"]))
    print("detection (step it fired at / steps):")
    for d in detections:
        print(f"  {d[0]:36s} fired at {d[1]} of {d[3]} by {d[2]}")
    assert all(d[1] is not None for d in detections)
