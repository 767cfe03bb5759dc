"""The Mixture as an imitator: fast path = step loop, the bound on every run, interventions do not
reweight, queries (class mass, top-k, values), and clear errors on bad input."""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401
from experiments.protocol import closed_loop, teacher_forced
from learners.history import LearningHistory
from learners.protocols import Imitator, Transition
from learners.recorder import record
from learners.solomonoff.checks import assert_bound
from learners.solomonoff.draw import teacher_for
from learners.solomonoff.enumerate import BudgetError
from learners.solomonoff.parser import ProgramParseError, parse_program
from learners.errors import HistoryFitError
from learners.solomonoff.mixture import Mixture
from learners.solomonoff.probe import probe_histories, profile_for_env
from learners.teachers.base import make_teacher

ENV, KW = "hypospace/DarkRoom-v0", {"size": 4, "goal": [0, 3]}
TEACHER = "QLearning(init=0, alpha=1/2, gamma=1/2, explore=softmax(1/2))"   # 17 bits
BUDGET = 17


@pytest.fixture(scope="module")
def base():
    return Mixture.for_env(ENV, BUDGET, env_kwargs=KW)


@pytest.fixture(scope="module")
def history():
    env = gym.make(ENV, **KW)
    name, kw = teacher_for(parse_program(TEACHER))
    t = make_teacher(name, env.observation_space, env.action_space, seed=5, **kw)
    return record(t, ENV, env_kwargs=KW, episodes=100, seed=6)


def test_fast_path_equals_step_loop_and_bound_holds(base, history):
    assert isinstance(base, Imitator)
    fast, slow = base.clone(), base.clone()
    r_fast = teacher_forced(fast, history)
    r_slow = teacher_forced(slow, history, use_fast_path=False)
    assert np.array_equal(r_fast.probs, r_slow.probs)
    for a, b in zip(fast.logw, slow.logw):
        assert np.array_equal(a, b)
    assert np.allclose(r_fast.probs.sum(1), 1.0) and (r_fast.probs > 0).all()
    rep = assert_bound(fast, history, teacher=TEACHER,
                       programs=[TEACHER, "Constant(1)", "TD(init=0, alpha=1/n, target=r, explore=greedy)"])
    assert rep["teacher_min_slack_bits"] >= 0
    # the bound is tight-ish once the teacher is identified: mixture loss - teacher loss < teacher bits
    assert rep["teacher_final_slack_bits"] < base.grammar.bits(parse_program(TEACHER)) + 1.0


def test_interventions_advance_programs_but_never_reweight(base, history):
    mix = base.clone().condition(history)
    assert_bound(mix, history)
    post = mix.posterior()
    q_before = [g.engine.Q.copy() for g in mix.groups if g.name == "td"][0]
    res = closed_loop(mix, ENV, episodes=5, seed=1, env_kwargs=KW)
    assert np.array_equal(mix.posterior(), post)
    q_after = [g.engine.Q for g in mix.groups if g.name == "td"][0]
    assert not np.array_equal(q_before, q_after)  # the value tables learnt from the mixture's own steps
    # same state + seed -> same run
    mix2 = base.clone().condition(history)
    res2 = closed_loop(mix2, ENV, episodes=5, seed=1, env_kwargs=KW)
    assert np.array_equal(res.history.action, res2.history.action)
    mix.check_bound()


def test_identifies_the_teacher_and_tracks_its_values(base, history):
    mix = base.clone()
    mix.predict_history(history, watch=[TEACHER])
    assert_bound(mix, history, teacher=TEACHER)
    mass = mix.class_mass(TEACHER)
    assert mass == pytest.approx(mix.watch_trace[-1, 0])
    assert mass > 0.9
    top = mix.top(3)
    assert top[0]["source"].startswith("QLearning(init=0, alpha=1/2") and top[0]["mass"] == pytest.approx(mass, rel=1e-9)
    assert "bits  p=" in mix.format_top(2)
    V, td_mass = mix.value_table()
    env = gym.make(ENV, **KW)
    name, kw = teacher_for(parse_program(TEACHER))
    # the teacher's weights after the whole history, by replaying it
    t = make_teacher(name, env.observation_space, env.action_space, seed=5, **kw)
    for k in range(len(history)):
        t.observe(Transition(int(history.obs[k]), int(history.action[k]), float(history.reward[k]),
                             int(history.next_obs(k)), bool(history.terminated[k]), bool(history.truncated[k])))
    assert td_mass > 0.9
    assert np.abs(V - t.weights()["Q"]).max() < 0.05
    # new task: programs restart, beliefs stay
    post = mix.posterior()
    mix.reset_programs()
    assert np.array_equal(mix.posterior(), post)
    eng = [g.engine for g in mix.groups if g.name == "td"][0]
    assert (eng.Q == eng.init[None, None, :]).all() and eng.N.sum() == 0 and eng.pending is None
    assert np.abs(mix.value_table()[0]).max() < 1e-3  # posterior mass sits on init 0


def test_queries_and_bad_input(base, history):
    mix = base.clone()
    with pytest.raises(ProgramParseError, match="unknown program kind"):
        mix.class_mass("QLerning(init=0)")
    with pytest.raises(ProgramParseError):
        mix.class_mass("QLearning(init=0, alpha=1/4, gamma=9/10, explore=eps_greedy(1/10)")
    with pytest.raises(ValueError, match="action"):
        mix.class_mass("Constant(9)")
    # a program longer than the budget is in no class: mass 0, no hypotheses
    info = mix.class_info("QLearning(init=0, alpha=1/4, gamma=9/10, explore=eps_greedy(1/10))")
    assert info["mass"] == 0.0 and not info["hypotheses"]
    # prior masses: a class query equals the sum over its hypotheses; all sum to 1
    assert mix.posterior().sum() == pytest.approx(1.0)
    assert 0 < mix.class_mass("Constant(2)") < 1
    # action-space mismatch
    bad = LearningHistory.from_arrays(obs=np.zeros(3, np.int64), action=np.zeros(3, np.int64), reward=np.zeros(3),
                                      terminated=np.zeros(3, bool), truncated=np.array([0, 0, 1], bool),
                                      teacher_probs=np.full((3, 4), 0.25), final_obs={2: 0})
    with pytest.raises(HistoryFitError, match="4 actions"):
        mix.predict_history(bad)
    bad_obs = LearningHistory.from_arrays(obs=np.array([0, 99, 1]), action=np.zeros(3, np.int64), reward=np.zeros(3),
                                          terminated=np.zeros(3, bool), truncated=np.array([0, 0, 1], bool),
                                          teacher_probs=np.full((3, 5), 0.2), final_obs={2: 0})
    with pytest.raises(HistoryFitError, match="states"):
        mix.predict_history(bad_obs)
    # a truncated step without the observation after it: refused before any step, saying how to fix it
    no_final = LearningHistory.from_arrays(obs=np.array([0, 1, 2, 0]), action=np.zeros(4, np.int64), reward=np.zeros(4),
                                           terminated=np.zeros(4, bool), truncated=np.array([0, 1, 0, 1], bool),
                                           teacher_probs=np.full((4, 5), 0.2), final_obs={3: 1})
    with pytest.raises(HistoryFitError, match=r"1 of the history's 2 truncated steps \(steps 1\).*final_obs="):
        mix.predict_history(no_final)
    with pytest.raises(HistoryFitError):
        mix.observe(Transition(0, 7, 0.0, 1, False, False), intervention=False)
    assert mix.n_evidence == 0  # nothing was half-applied
    with pytest.raises(BudgetError, match="no program"):
        Mixture.for_env(ENV, 3, env_kwargs=KW)
    with pytest.raises(ValueError, match="smoothing"):
        Mixture(base.space, smoothing=0.0)
    mix.check_bound()


def test_dedup_adds_weights_and_rarely_merges_distinct_programs(base):
    # total prior mass is preserved by merging (never dropped)
    explicit = [g for g in base.groups if g.name != "family"]
    merged = np.log2(sum(np.exp2(g.log2w).sum() for g in explicit))
    sp = base.space
    before = [sp.td["log2w"]] + [np.array([w for _, _, w, _ in lst]) for lst in (sp.fixed, sp.ucb, sp.thompson) if lst]
    assert merged == pytest.approx(np.log2(sum(np.exp2(b).sum() for b in before)), abs=1e-12)
    assert base.dedup_stats["explicit_after"] < base.dedup_stats["explicit_before"]
    assert sum(int(g.members.sum()) for g in explicit) == base.dedup_stats["explicit_before"]
    # probing on new, longer probes splits few of the merged classes (near-equivalent programs)
    from learners.solomonoff.probe import fingerprint_engines
    fresh = probe_histories(base.profile, n=4, length=1200, seed=777)
    undedup = Mixture(base.space, profile=base.profile, dedup=False)
    engines = [g.engine for g in undedup.groups if g.name != "family"]
    f_old = np.concatenate(fingerprint_engines(engines, base.probes, base.n_actions))
    f_new = np.concatenate(fingerprint_engines(engines, fresh, base.n_actions))
    old_classes = len({tuple(r) for r in f_old})
    joint = len({(tuple(a), tuple(b)) for a, b in zip(f_old, f_new)})
    assert old_classes == base.dedup_stats["explicit_after"]
    assert joint - old_classes <= 0.05 * old_classes
    base.check_bound()


def test_time_limit_is_read_from_the_env():
    """The probes' episode length is the env's own: FrozenLake's registered 100 steps, a Dark Room
    built with 30 (never an assumed 20)."""
    assert profile_for_env("FrozenLake-v1").episode_len == 100
    assert profile_for_env("hypospace/DarkRoom-v0", size=4, episode_len=30).episode_len == 30
    assert profile_for_env("hypospace/Chain-v0", n=4).episode_len == 20
    assert profile_for_env("hypospace/Chain-v0", n=6, episode_len=7).episode_len == 7
