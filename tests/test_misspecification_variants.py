"""The misspecification check over the wider grammar (every implementation variant on):
no alarm on teachers inside the class, an alarm on a DQN and on the out-of-grammar SARSA.

Measured with ``pytest -m slow -s tests/test_misspecification_variants.py`` (prints every
figure): 24 teachers drawn uniformly from the enumerated TD classes of the wider space (Dark
Room 4x4, 2000 steps each, run by the reference semantics) and the steps at which the DQN and
draw-first SARSA histories fire. Measured (2026-12-04, 120,240 TD classes at 30 bits): 0 alarms
in 24 teachers (regret 3-23 bits against an allowance of 41); DQN (2000 steps) fired at steps
270 and 122, the draw-first SARSA (6000 steps) at 609 and 816, all by the regret test.
"""
from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401
from learners.recorder import record
from learners.solomonoff.misspecification import MisspecificationWarning
from learners.solomonoff.mixture import Mixture
from learners.solomonoff.printer import program_source
from learners.solomonoff.semantics import ProgramAgent
from learners.teachers.base import make_teacher
from test_misspecification import DrawFirstSarsa

DARKROOM4 = ("hypospace/DarkRoom-v0", {"size": 4, "goal": [0, 3]})
ALL = ("act_first", "truncation", "ties", "eps_schedule")
#: the wider space: every variant, TD parts boxed so that 16-bit action rules (schedules) fit
WIDE = dict(variants=ALL, kind_budgets={k: 16 for k in ("Constant", "Stochastic", "Cyclic", "Reactive")},
            part_budgets={"init": 1, "alpha": 2, "target": 9, "gamma": 1, "explore": 16})


class _ProgramTeacher(ProgramAgent):
    """A program of the class run as a teacher by the recorder (which asks for values per obs)."""

    def values(self, obs=None):
        return None

    def weights(self) -> dict[str, np.ndarray]:
        return {"Q": self.Q.copy()}


def _condition(base: Mixture, hist):
    mix = base.clone()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MisspecificationWarning)
        mix.predict_history(hist)
    fired = [w for w in caught if issubclass(w.category, MisspecificationWarning)]
    return mix.diagnostics()["misspecification"], fired


@pytest.mark.slow
def test_false_alarm_rate_and_detection_wider_grammar():
    env_id, kw = DARKROOM4
    base = Mixture.for_env(env_id, 30, env_kwargs=kw, **WIDE)
    sp = base.space
    rng = np.random.default_rng(2026)
    rows = []
    for i, cls in enumerate(rng.choice(sp.n_td, size=24, replace=False)):
        prog = sp.td_program(int(cls))
        hist = record(_ProgramTeacher(prog, base.grammar, smoothing=base.smoothing, seed=i), env_id, env_kwargs=kw,
                      episodes=100, seed=i + 7)
        rep, fired = _condition(base, hist)
        rows.append((program_source(prog), rep["steps"], rep["regret_bits"], rep["allowance_bits"],
                     rep["evidence_for_alternative_bits"], rep["fired_at_step"]))
    print(f"\nwider space: {sp.n_td} TD classes; in-class teachers: {len(rows)}; "
          f"alarms: {sum(r[-1] is not None for r in rows)}")
    for r in rows:
        print(f"  {r[0]:120s} T={r[1]} regret={r[2]:.1f} alternatives={r[4]:.1f} allowance={r[3]:.1f} fired={r[5]}")
    detections = []
    for seed in range(2):
        env = gym.make(env_id, **kw)
        dqn = record(make_teacher("dqn", env.observation_space, env.action_space, seed=seed, preset="smoke"), env_id,
                     env_kwargs=kw, steps=2000, seed=seed)
        sarsa = record(DrawFirstSarsa(int(env.observation_space.n), int(env.action_space.n), 0.5, 0.5, 0.5, seed),
                       env_id, env_kwargs=kw, episodes=300, seed=seed + 7)
        for name, hist in ((f"dqn seed {seed}", dqn), (f"draw-first sarsa seed {seed}", sarsa)):
            rep, fired = _condition(base, hist)
            detections.append((name, rep["fired_at_step"], rep["fired_by"], rep["steps"]))
    print("detection (step it fired at / steps):")
    for d in detections:
        print(f"  {d[0]:30s} fired at {d[1]} of {d[3]} by {d[2]}")
    assert all(r[-1] is None for r in rows)
    assert all(d[1] is not None for d in detections)
