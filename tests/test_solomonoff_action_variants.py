"""The action-rule variants of the grammar: ``ties`` (greedy ties to the first index, as
``np.argmax`` breaks them) and ``eps_schedule`` (epsilon decaying per episode or per step,
exponentially or linearly, to a floor), against a teacher written as the gymnasium tutorials
write Q-learning (``learners.teachers.reference.TutorialQLearning``):

* their code words and source text read back to the same program;
* the numpy engine equals the reference semantics, and the compiled kernels the numpy engine,
  to 1e-12, on programs with every variant;
* the program (reference semantics, numpy engine, compiled engine) equals the tutorial
  teacher's action probabilities to 1e-12 (four forms of decay, both tie rules);
* the mixture over the wider grammar identifies the teacher (KL < 0.01 bits over the last 500
  steps, class mass > 0.9, the per-sequence bound, no misspecification alarm).
"""
from __future__ import annotations

from fractions import Fraction

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401
from experiments.protocol import score_predictions
from learners.protocols import Transition
from learners.recorder import record
from learners.solomonoff.checks import assert_bound, reference_probs
from learners.solomonoff.enumerate import enumerate_programs
from learners.solomonoff.grammar import Grammar
from learners.solomonoff.hypotheses import td_arrays_from_programs, td_arrays_from_space
from learners.solomonoff.interpreter import TDEngine
from learners.solomonoff.mixture import Mixture
from learners.solomonoff.parser import ProgramParseError, parse_program
from learners.solomonoff.printer import program_source
from learners.solomonoff.probe import EnvProfile, probe_histories
from learners.solomonoff.semantics import ProgramAgent
from learners.teachers.reference import TutorialQLearning

SM = 2.0 ** -10
ALL = ("act_first", "truncation", "ties", "eps_schedule")
#: every variant within reach: short TD parts, long action rules (schedules need ~12-20 bits)
BOX = {"init": 3, "alpha": 5, "target": 9, "gamma": 4, "explore": 17}
DARKROOM = ("hypospace/DarkRoom-v0", {"size": 4, "goal": [0, 3]})
#: episodes of 300 steps: each epsilon of the decay is seen 300 times, which is what separates
#: the schedule from its neighbours (exp 1/3, floor 1/7, exp-to-floor 1/2: with 20-step
#: episodes they keep ~0.3 of the mass, as the history cannot tell them apart)
LONG = ("hypospace/DarkRoom-v0", {"size": 4, "goal": [0, 3], "episode_len": 300})
TUTORIAL = ("QLearning(init=0, alpha=1/2, gamma=1/2, explore=eps_greedy(1), ties=first, "
            "eps_decay=exp_per_episode(1/4), eps_floor=1/8)")
TUTORIAL_KW = dict(alpha=0.5, gamma=0.5, epsilon=1.0, epsilon_decay=0.25, final_epsilon=0.125, decay="exp")
CONSTANT = "QLearning(init=0, alpha=1/2, gamma=1/2, explore=eps_greedy(1/8), ties=first)"
UNIFORM = ("QLearning(init=0, alpha=1/2, gamma=1/2, explore=eps_greedy(1), "
           "eps_decay=exp_per_episode(1/4), eps_floor=1/8)")


def _space(S: int, A: int, seed: int, n: int):
    g = Grammar(S, A, variants=ALL)
    sp = enumerate_programs(g, 34, kinds=["TD"], part_budgets=BOX)
    idx = np.random.default_rng(seed).choice(sp.n_td, size=n, replace=False)
    return g, sp, idx


def test_codes_and_text():
    g, plain = Grammar(16, 5, variants=("ties", "eps_schedule")), Grammar(16, 5)
    p = parse_program(TUTORIAL)
    assert parse_program(program_source(p)) == p
    assert p.explore.ties == "first" and p.explore.schedule.rate == Fraction(1, 4)
    q = parse_program("QLearning(init=0, alpha=1/2, gamma=1/2, explore=eps_greedy(1/10))")
    assert g.bits(q) == plain.bits(q) + 2                 # a tie bit and a 'constant epsilon' bit
    greedy = parse_program("QLearning(init=0, alpha=1/2, gamma=1/2, explore=greedy)")
    assert g.bits(greedy) == plain.bits(greedy) + 1       # the tie bit only
    soft = parse_program("QLearning(init=0, alpha=1/2, gamma=1/2, explore=softmax(1))")
    assert g.bits(soft) == plain.bits(soft)               # no ties, no epsilon: no new bits
    for prog in (p, q, greedy, soft, parse_program(UNIFORM)):
        word = g.encode(prog)
        assert len(word) == g.bits(prog) and g.decode(word) == (prog, len(word))
    # the code is prefix-free over the enumerated action rules: Kraft sum <= 1
    sp = enumerate_programs(g, 30, kinds=["TD"], part_budgets={"init": 1, "alpha": 1, "target": 2, "explore": 17})
    assert sp.n_td > 1000 and float(np.exp2(-sp.td["bits"]).sum()) <= 1.0
    with pytest.raises(ValueError, match="variants"):
        plain.bits(p)
    with pytest.raises(ProgramParseError, match="eps_decay is one of"):
        parse_program(TUTORIAL.replace("exp_per_episode", "cosine"))
    with pytest.raises(ProgramParseError, match="first-index"):
        parse_program("QLearning(init=0, alpha=1/2, gamma=1/2, explore=softmax(1), ties=first)")


def test_numpy_engine_equals_reference_semantics():
    g, sp, idx = _space(3, 4, 0, 150)
    t, v = td_arrays_from_space(sp, idx)
    eng = TDEngine(g, t, v, SM, backend="numpy")
    progs = [sp.td_program(i) for i in idx[eng.variant_order]]
    assert sum(p.explore.ties == "first" for p in progs) >= 20
    assert {p.explore.schedule.per for p in progs if p.explore.schedule} == {"episode", "step"}
    assert {p.explore.schedule.shape for p in progs if p.explore.schedule} == {"exp", "linear", "exp_to_floor"}
    agents = [ProgramAgent(p, g, smoothing=SM) for p in progs]
    probe = probe_histories(EnvProfile(3, 4, episode_len=6, can_terminate=True, rewards=(0.0, 0.5, 1.0)),
                            n=1, length=400, seed=3)[0]
    worst = 0.0
    for k in range(len(probe)):
        s = int(probe.obs[k])
        eng.prepare(s)
        worst = max(worst, float(np.abs(eng.all_probs() - np.array([ag.raw_probs(s) for ag in agents])).max()))
        tr = Transition(s, int(probe.action[k]), float(probe.reward[k]), int(probe.next_obs[k]),
                        bool(probe.terminated[k]), bool(probe.truncated[k]))
        eng.advance(s, tr.action, tr.reward, tr.next_obs, tr.terminated, tr.truncated)
        for ag in agents:
            ag.observe(tr)
    assert worst <= 1e-12
    Q = eng.table_values()[eng.values_of_variants()]
    np.testing.assert_allclose(Q, np.array([ag.Q for ag in agents]), rtol=1e-12, atol=1e-12)


def test_compiled_engine_equals_numpy_engine():
    """Fused step, split mix/evidence and update, on 2 threads, against the numpy engine; the
    tables that need their own first-index or scheduled policy at s' are exercised."""
    g, sp, idx = _space(3, 4, 1, 1500)
    t, v = td_arrays_from_space(sp, idx)
    assert t["pi_first"].sum() > 10 and (t["pi_sched_per"] == 2).sum() > 10
    ref, fast = TDEngine(g, t, v, SM, backend="numpy"), TDEngine(g, t, v, SM, backend="numba", table_block=64)
    fast.set_threads(2)
    probe = probe_histories(EnvProfile(3, 4, episode_len=7, can_terminate=True, rewards=(0.0, 0.5, 1.0)),
                            n=1, length=400, seed=3)[0]
    lw_ref = np.random.default_rng(0).normal(size=ref.n) * 5.0
    lw_fast = lw_ref.copy()
    for k in range(len(probe)):
        s, a = int(probe.obs[k]), int(probe.action[k])
        ref.prepare(s)
        fast.prepare(s)
        M = float(lw_ref.max())
        w = np.exp(lw_ref - M)
        mix_ref, Z_ref = ref.mix(w), float(w.sum())
        tr = (float(probe.reward[k]), int(probe.next_obs[k]), bool(probe.terminated[k]), bool(probe.truncated[k]))
        if k % 2 == 0:
            Z, mix, _ = fast.step(s, a, *tr, lw_fast, M)
        else:
            Z, mix, _ = fast.mix_and_evidence(a, lw_fast, M)
        lw_ref += ref.loglik(a)
        np.testing.assert_allclose(mix / Z, mix_ref / Z_ref, rtol=0, atol=1e-12)
        np.testing.assert_allclose(lw_fast, lw_ref, rtol=1e-13, atol=1e-12)
        ref.advance(s, a, *tr)
        if k % 2:
            fast.advance(s, a, *tr)
        np.testing.assert_allclose(fast.Q, ref.Q, rtol=1e-12, atol=1e-12)
    assert fast.clock == ref.clock and fast.clock[1] > 40


def _history(episodes: int, seed: int = 0, env=DARKROOM, **kw):
    env_id, env_kw = env
    e = gym.make(env_id, **env_kw)
    teacher = TutorialQLearning(int(e.observation_space.n), int(e.action_space.n), seed=seed, **{**TUTORIAL_KW, **kw})
    return record(teacher, env_id, env_kwargs=env_kw, episodes=episodes, seed=seed + 7)


def _program_probs(src: str, grammar: Grammar, hist) -> np.ndarray:
    return reference_probs(src, grammar, hist, SM, raw=True)


def _engine_probs(eng: TDEngine, hist) -> np.ndarray:
    out = np.empty((len(hist), eng.A))
    for t in range(len(hist)):
        s = int(hist.obs[t])
        eng.prepare(s)
        out[t] = eng.all_probs()[0]
        eng.advance(s, int(hist.action[t]), float(hist.reward[t]), int(hist.next_obs(t)), bool(hist.terminated[t]),
                    bool(hist.truncated[t]))
    return out


@pytest.mark.parametrize("kw,src", [
    ({}, TUTORIAL),
    # the gymnasium Blackjack tutorial's own form: linear per-episode decay to 0.1
    (dict(epsilon_decay=1 / 16, final_epsilon=0.1, decay="linear"), TUTORIAL.replace("exp_per_episode(1/4)", "linear_per_episode(1/16)").replace("1/8)", "1/10)")),
    (dict(epsilon_decay=1 / 200, decay="exp", per="step", ties="uniform"), UNIFORM.replace("exp_per_episode(1/4)", "exp_per_step(1/200)")),
    # the Hugging Face Deep RL course's form: min + (max - min) exp(-decay_rate * episode), min 0.05
    (dict(epsilon_decay=1 / 20, final_epsilon=0.05, decay="exp_to_floor"),
     TUTORIAL.replace("exp_per_episode(1/4)", "exp_to_floor_per_episode(1/20)").replace("1/8)", "1/20)")),
])
def test_program_is_the_tutorial_teacher(kw, src):
    hist = _history(60, **kw)
    g = Grammar(16, int(hist.n_actions), variants=("ties", "eps_schedule"))
    tp = np.asarray(hist.teacher_probs, dtype=np.float64)
    assert np.abs(_program_probs(src, g, hist) - tp).max() <= 1e-12
    for backend in ("numpy", "numba"):     # the batched interpreter running the same program
        t, v = td_arrays_from_programs([parse_program(src)], bandit=False)
        assert np.abs(_engine_probs(TDEngine(g, t, v, SM, backend=backend), hist) - tp).max() <= 1e-12
    # the nearest plain programs are other functions on this history
    for other in (CONSTANT, UNIFORM if "ties=first" in src else CONSTANT.replace(", ties=first", "")):
        assert (np.abs(_program_probs(other, g, hist) - tp).max(axis=1) > 1e-3).sum() >= 10


@pytest.mark.parametrize("gamma_bits", [1, pytest.param(4, marks=pytest.mark.slow)])
def test_mixture_identifies_the_tutorial_teacher(gamma_bits):
    """20 episodes (6000 steps) of the tutorial teacher; the mixture over the TD programs with
    both action-rule variants (TD parts boxed so that the 28-bit teacher fits: ~1.5e4 programs
    with gamma 1/2 only, ~7.5e4 with every gamma of <= 4 bits) puts its mass on the teacher's
    program."""
    env_id, kw = LONG
    others = {k: 16 for k in ("Constant", "Stochastic", "Cyclic", "Reactive")}
    mix = Mixture.for_env(env_id, 28, env_kwargs=kw, variants=("ties", "eps_schedule"), kind_budgets=others,
                          part_budgets={"init": 1, "alpha": 2, "target": 7, "gamma": gamma_bits, "explore": 16})
    hist = _history(20, env=LONG)
    probs = mix.predict_history(hist, watch=[TUTORIAL, CONSTANT, UNIFORM])
    assert_bound(mix, hist, teacher=TUTORIAL, programs=[TUTORIAL])
    assert score_predictions(probs, hist).kl_bits[-500:].mean() < 0.01
    mass, constant_mass, uniform_mass = mix.watch_trace[-1]
    assert mass > 0.9 and constant_mass < 0.01 and uniform_mass < 0.01, (mass, mix.format_top(3))
    assert not mix.diagnostics()["misspecification"]["misspecified"]
