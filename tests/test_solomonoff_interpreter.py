"""Batched interpreter = reference semantics = the real teachers, step by step.

* every TD program of a random sample of an enumerated space: batched probabilities and value
  tables equal (to 1e-12, i.e. up to rounding) to the one-program reference interpreter on histories with terminal
  steps, time-limit truncations and pending SARSA updates;
* the closed-form families equal the explicit Bayes mixture over all their members;
* recorded histories of the tabular and bandit teachers: the program with the teacher's
  parameters gives the teacher's probabilities at every step (max abs diff <= 1e-12).
"""
from __future__ import annotations

import itertools
import math

import gymnasium as gym
import numpy as np
import pytest
from scipy import integrate, special, stats

import envs  # noqa: F401
from learners.protocols import Transition
from learners.recorder import record
from learners.solomonoff.draw import teacher_for
from learners.solomonoff.enumerate import enumerate_programs
from learners.solomonoff.grammar import Grammar
from learners.solomonoff.hypotheses import fixed_probs, td_arrays_from_programs, td_arrays_from_space
from learners.solomonoff.interpreter import FamilyEngine, FixedEngine, TDEngine, ThompsonEngine, UCBEngine
from learners.solomonoff.interpreter.reductions import asum
from learners.solomonoff.parser import parse_program
from learners.solomonoff.probe import EnvProfile, probe_histories
from learners.solomonoff.semantics import ProgramAgent
from learners.solomonoff.syntax import Cyclic, Reactive
from learners.teachers.base import make_teacher

SM = 2.0 ** -10


def _run(engine, agents, probe):
    """Step engine and reference agents together; return the worst probability difference."""
    worst = 0.0
    for k in range(len(probe)):
        s = int(probe.obs[k])
        engine.prepare(s)
        P = engine.all_probs()
        R = np.array([ag.raw_probs(s) for ag in agents])
        worst = max(worst, float(np.abs(P - R).max()))
        tr = Transition(s, int(probe.action[k]), float(probe.reward[k]), int(probe.next_obs[k]),
                        bool(probe.terminated[k]), bool(probe.truncated[k]))
        engine.advance(s, tr.action, tr.reward, tr.next_obs, tr.terminated, tr.truncated)
        for ag in agents:
            ag.observe(tr)
    return worst


@pytest.mark.parametrize("S,A,bandit,budget,variants", [(5, 3, False, 17, ()), (4, 2, False, 16, ()), (1, 4, True, 15, ()),
                                                        (3, 3, False, 17, ("act_first",)),
                                                        (3, 3, False, 17, ("act_first", "truncation"))])
def test_td_engine_equals_reference(S, A, bandit, budget, variants):
    g = Grammar(S, A, bandit=bandit, variants=variants)
    sp = enumerate_programs(g, budget, kinds=["TD"])
    rng = np.random.default_rng(S * 10 + A)
    idx = rng.choice(sp.n_td, size=min(150, sp.n_td), replace=False)
    t, v = td_arrays_from_space(sp, idx)
    eng = TDEngine(g, t, v, SM)
    assert eng.n_tables < idx.size or bandit  # programs share tables
    progs = [sp.td_program(i) for i in idx[eng.variant_order]]
    for v, flag in (("act_first", "act_first"), ("truncation", "trunc_terminal")):
        if v in variants:   # both sides of each variant are exercised
            assert 20 <= sum(getattr(p, flag) for p in progs) <= len(progs) - 20
    agents = [ProgramAgent(p, g, smoothing=SM) for p in progs]
    prof = EnvProfile(S, A, bandit=bandit, episode_len=None if bandit else 6, can_terminate=True, rewards=(0.0, 0.5, 1.0))
    probe = probe_histories(prof, n=1, length=500, seed=3)[0]
    # Equal to rounding: numpy's vectorised exp over a batch and its scalar exp over one program
    # may round differently (by CPU), and expected-SARSA targets carry that into the tables.
    assert _run(eng, agents, probe) <= 1e-12
    Q = eng.table_values()[eng.values_of_variants()]
    np.testing.assert_allclose(Q, np.array([ag.Q for ag in agents]), rtol=1e-12, atol=1e-12)


def test_small_engines_equal_reference():
    g = Grammar(1, 3, bandit=True)
    progs = [parse_program(x) for x in ("UCB1(c=2)", "UCB1(c=1/2)", "Thompson(alpha=1, beta=1)",
                                        "Thompson(alpha=2, beta=3)", "Constant(1)", "Stochastic(1, 0, 3)")]
    engines = [UCBEngine(g, np.array([2.0, 0.5]), SM), ThompsonEngine(g, np.array([1, 2]), np.array([1, 3]), SM),
               FixedEngine(g, fixed_probs(progs[4:], 3), SM)]
    groups = [progs[:2], progs[2:4], progs[4:]]
    probe = probe_histories(EnvProfile(1, 3, bandit=True, episode_len=None, can_terminate=True), n=1, length=120, seed=5)[0]
    for eng, ps in zip(engines, groups):
        assert _run(eng, [ProgramAgent(p, g) for p in ps], probe) <= 1e-15


def _two_arm_closed_form(a1: float, b1: float, a2: float, b2: float) -> float:
    """P(X2 > X1) for X1 ~ Beta(a1, b1), X2 ~ Beta(a2, b2), a2 a positive integer: the finite sum
    sum_{i < a2} B(a1 + i, b1 + b2) / ((b2 + i) B(1 + i, b2) B(a1, b1)) (in logs)."""
    i = np.arange(int(a2))
    terms = special.betaln(a1 + i, b1 + b2) - np.log(b2 + i) - special.betaln(1 + i, b2) - special.betaln(a1, b1)
    return float(np.exp(terms).sum())


def _quadpack_probs(alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """p_i = int f_i(x) prod_{j != i} F_j(x) dx by QUADPACK's adaptive quadrature."""
    out = []
    for i in range(alpha.size):
        def integrand(x: float, i: int = i) -> float:
            others = [special.betainc(alpha[j], beta[j], x) for j in range(alpha.size) if j != i]
            return float(stats.beta.pdf(x, alpha[i], beta[i]) * np.prod(others))
        out.append(integrate.quad(integrand, 0.0, 1.0, epsabs=1e-13, epsrel=1e-11, limit=200)[0])
    return np.array(out)


@pytest.mark.parametrize("A", [2, 3])
def test_thompson_engine_matches_independent_reference(A):
    """The engine's exact Thompson probabilities against a closed form (2 arms, integer shapes)
    and QUADPACK (3 arms), along a run whose posteriors sharpen: both references are computed
    here, independently of the shared quadrature they check."""
    g = Grammar(1, A, bandit=True)
    priors = np.array([[1, 1], [2, 3], [5, 1]])
    eng = ThompsonEngine(g, priors[:, 0], priors[:, 1], SM)
    rng = np.random.default_rng(11)
    means = np.linspace(0.3, 0.7, A)
    succ, fail = np.zeros(A), np.zeros(A)
    worst = 0.0
    for t in range(80):
        eng.prepare(0)
        got = eng.all_probs()
        if t % (1 if A == 2 else 8) == 0:
            for k, (a0, b0) in enumerate(priors):
                al, be = a0 + succ, b0 + fail
                if A == 2:
                    p1 = _two_arm_closed_form(al[0], be[0], al[1], be[1])
                    ref = np.array([1.0 - p1, p1])
                else:
                    ref = _quadpack_probs(al, be)
                worst = max(worst, float(np.abs(got[k] - ref).max()))
        a = int(rng.integers(A))
        r = float(rng.random() < means[a])
        succ[a] += r
        fail[a] += 1.0 - r
        eng.advance(0, a, r, 0, True, False)
    assert worst < 1e-9, worst


def _explicit_family_mixture(members, bits, probe, smoothing, n_actions, state_of):
    """Bayes mixture over explicitly listed deterministic members (their actions per step)."""
    logw = -np.asarray(bits) * math.log(2)
    preds, logZ = [], []
    for k in range(len(probe)):
        acts = np.array([m(k) for m in members])
        w = np.exp(logw - logw.max())
        p = np.bincount(acts, weights=w, minlength=n_actions) / w.sum()
        preds.append((1 - smoothing) * p + smoothing / n_actions)
        a = int(probe.action[k])
        logw = logw + np.log(np.where(acts == a, 1 - smoothing + smoothing / n_actions, smoothing / n_actions))
    return np.array(preds)


def test_families_equal_the_explicit_mixture_over_their_members():
    S, A = 3, 2
    g = Grammar(S, A)
    probe = probe_histories(EnvProfile(S, A, episode_len=4), n=1, length=60, seed=1)[0]
    ep_step = np.zeros(len(probe), dtype=np.int64)
    for k in range(1, len(probe)):
        ep_step[k] = 0 if (probe.terminated[k - 1] or probe.truncated[k - 1]) else ep_step[k - 1] + 1
    # cyclic family (episode clock, period 3): 8 members
    fam = FamilyEngine(g, [("episode", 3)], [], SM)
    seqs = list(itertools.product(range(A), repeat=3))
    members = [lambda k, sq=sq: sq[ep_step[k] % 3] for sq in seqs]
    ref = _explicit_family_mixture(members, [g.bits(Cyclic("episode", sq)) for sq in seqs], probe, SM, A, None)
    # reactive family (default 1, k=1): all 8 tables with their own code lengths
    famr = FamilyEngine(g, [], [(1, 1)], SM)
    tables = list(itertools.product(range(A), repeat=S))
    rbits = [g.bits(Reactive(1, 1, tuple((s, a) for s, a in enumerate(tb) if a != 1))) for tb in tables]
    membersr = [lambda k, tb=tb: tb[int(probe.obs[k])] for tb in tables]
    refr = _explicit_family_mixture(membersr, rbits, probe, SM, A, None)
    for f, r in ((fam, ref), (famr, refr)):
        lw = 0.0
        for k in range(len(probe)):
            s, a = int(probe.obs[k]), int(probe.action[k])
            f.prepare(s)
            pred = (1 - SM) * f.all_probs()[0] + SM / A
            assert np.allclose(pred, r[k], atol=1e-12)
            lw += f.loglik(a)[0]
            f.evidence(s, a)
            f.advance(s, a, 0.0, int(probe.next_obs[k]), bool(probe.terminated[k]), bool(probe.truncated[k]))
    # members' prior mass is exactly the family's: Kraft sum of the member lengths = 2^-prefix
    assert sum(2.0 ** -b for b in rbits) == pytest.approx(2.0 ** -g.reactive_prefix_bits(1))


def test_sums_match_numpy_order():
    rng = np.random.default_rng(0)
    for A in (2, 5, 8, 11, 20):
        x = rng.random((A, 300))
        assert np.array_equal(asum(x), np.array([c.sum() for c in x.T]))


TABULAR_CASES = [
    ("q_learning", dict(alpha=0.25, gamma=0.9, epsilon=0.1), "QLearning(init=0, alpha=1/4, gamma=9/10, explore=eps_greedy(1/10))"),
    ("sarsa", dict(alpha=0.5, gamma=0.75, exploration="softmax", temperature=0.5, init=1.0),
     "SARSA(init=1, alpha=1/2, gamma=3/4, explore=softmax(1/2))"),
    ("expected_sarsa", dict(step_size="1/n", gamma=2 / 3, exploration="count_bonus", bonus=0.5, init=-0.5),
     "ExpectedSARSA(init=-1/2, alpha=1/n, gamma=2/3, explore=count_bonus(1/2))"),
    ("sarsa", dict(alpha=0.25, gamma=0.9, epsilon=0.0), "SARSA(init=0, alpha=1/4, gamma=9/10, explore=greedy)"),
    ("expected_sarsa", dict(alpha=0.1, gamma=0.5, epsilon=0.25, init=2.0), "ExpectedSARSA(init=2, alpha=1/10, gamma=1/2, explore=eps_greedy(1/4))"),
    ("q_learning", dict(step_size="1/n", gamma=0.5, exploration="count_bonus", bonus=2.0), "QLearning(init=0, alpha=1/n, gamma=1/2, explore=count_bonus(2))"),
]


def _teacher_history(name, kw, env_id, env_kwargs, episodes, seed=3):
    env = gym.make(env_id, **env_kwargs)
    t = make_teacher(name, env.observation_space, env.action_space, seed=seed, **kw)
    return record(t, env_id, env_kwargs=env_kwargs, episodes=episodes, seed=seed + 1)


@pytest.mark.parametrize("env_id,env_kwargs", [("hypospace/DarkRoom-v0", {"size": 5, "goal": [1, 3]}),
                                               ("hypospace/Chain-v0", {"n": 5})])
@pytest.mark.parametrize("name,kw,src", TABULAR_CASES)
def test_programs_reproduce_tabular_teachers(env_id, env_kwargs, name, kw, src):
    h = _teacher_history(name, kw, env_id, env_kwargs, episodes=40)
    S = int(gym.make(env_id, **env_kwargs).observation_space.n)
    A = h.n_actions
    g = Grammar(S, A)
    prog = parse_program(src)
    # teacher_for builds the same teacher config from the program
    name2, kw2 = teacher_for(prog)
    env = gym.make(env_id, **env_kwargs)
    assert name2 == name
    assert (make_teacher(name, env.observation_space, env.action_space, **kw2).config()
            == make_teacher(name, env.observation_space, env.action_space, **kw).config())
    ag = ProgramAgent(prog, g)
    t, v = td_arrays_from_programs([prog], False)
    eng = TDEngine(g, t, v, SM)
    worst_ref = worst_eng = 0.0
    for k in range(len(h)):
        s = int(h.obs[k])
        assert np.array_equal(ag.Q[s], h.teacher_values[k])  # the teacher's values, bit for bit
        worst_ref = max(worst_ref, float(np.abs(ag.raw_probs(s) - h.teacher_probs[k]).max()))
        eng.prepare(s)
        worst_eng = max(worst_eng, float(np.abs(eng.all_probs()[0] - h.teacher_probs[k]).max()))
        tr = Transition(s, int(h.action[k]), float(h.reward[k]), int(h.next_obs(k)), bool(h.terminated[k]), bool(h.truncated[k]))
        ag.observe(tr)
        eng.advance(s, tr.action, tr.reward, tr.next_obs, tr.terminated, tr.truncated)
    assert worst_ref <= 1e-12 and worst_eng <= 1e-12


BANDIT_CASES = [
    ("bandit_eps_greedy", dict(epsilon=0.25, init=0.0, step_size="1/n"), "TD(init=0, alpha=1/n, target=r, explore=eps_greedy(1/4))"),
    ("bandit_eps_greedy", dict(epsilon=0.1, init=1.0, step_size="constant", alpha=0.5), "TD(init=1, alpha=1/2, target=r, explore=eps_greedy(1/10))"),
    ("ucb1", dict(c=2.0), "UCB1(c=2)"),
    ("ucb1", dict(c=0.5), "UCB1(c=1/2)"),
    ("thompson", dict(prior_alpha=1.0, prior_beta=1.0), "Thompson(alpha=1, beta=1)"),
    ("thompson", dict(prior_alpha=2.0, prior_beta=1.0), "Thompson(alpha=2, beta=1)"),
]


@pytest.mark.parametrize("name,kw,src", BANDIT_CASES)
def test_programs_reproduce_bandit_teachers(name, kw, src):
    h = _teacher_history(name, kw, "hypospace/Bandit-v0", {"n_arms": 4}, episodes=150)
    g = Grammar(1, 4, bandit=True)
    prog = parse_program(src)
    assert teacher_for(prog, bandit=True)[0] == name
    ag = ProgramAgent(prog, g)
    worst = 0.0
    for k in range(len(h)):
        worst = max(worst, float(np.abs(ag.raw_probs(0) - h.teacher_probs[k]).max()))
        ag.observe(Transition(0, int(h.action[k]), float(h.reward[k]), 0, True, False))
    assert worst <= 1e-12
