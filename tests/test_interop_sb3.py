"""A Stable-Baselines3 DQN run recorded as a LearningHistory: the recorded distributions are the
ones SB3 draws from (uniform warm-up, its epsilon schedule, first-index ties), and the mixture's
and the controls' Q1 run on the recording."""
from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import pytest
from scipy import stats

pytest.importorskip("stable_baselines3", reason="stable-baselines3 not installed (pip install -e '.[sb3]')")

import torch as th  # noqa: E402
from stable_baselines3 import DQN  # noqa: E402
from stable_baselines3.common.utils import LinearSchedule  # noqa: E402

import envs  # noqa: E402,F401  (registers hypospace/ envs)
from experiments.protocol import UniformRandom, teacher_forced  # noqa: E402
from learners import LearningHistory  # noqa: E402
from learners.interop.sb3 import DQNHistoryCallback, FrozenDQN, step_probs  # noqa: E402
from learners.solomonoff import Mixture  # noqa: E402

ENV, KW = "hypospace/DarkRoom-v0", {"size": 4, "goal": [0, 3]}
STEPS, STARTS, FINAL_EPS = 1200, 300, 0.1


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    th.manual_seed(0)
    model = DQN("MlpPolicy", gym.make(ENV, **KW), learning_starts=STARTS, exploration_fraction=0.5,
                exploration_final_eps=FINAL_EPS, train_freq=4, target_update_interval=100, learning_rate=1e-3,
                buffer_size=10_000, batch_size=32, policy_kwargs={"net_arch": [32]}, seed=0, device="cpu")
    cb = DQNHistoryCallback(snapshot_every=200, metadata={"note": "test"})
    model.learn(STEPS, callback=cb)
    d = tmp_path_factory.mktemp("sb3") / "dqn"
    cb.history.save(d)
    return model, LearningHistory.load(d)


def test_history_follows_sb3_schedule_and_network(run):
    model, h = run
    assert len(h) == STEPS and h.metadata["teacher"]["teacher"] == "sb3_dqn" and h.metadata["note"] == "test"
    assert h.metadata["env_id"] == ENV and h.metadata["env_kwargs"] == KW and h.metadata["seed"] == 0
    A = h.n_actions
    p = np.asarray(h.teacher_probs)
    # Warm-up: uniform.  After: epsilon = SB3's LinearSchedule at the progress before the step.
    assert np.all(p[:STARTS] == 1.0 / A)
    sched = LinearSchedule(1.0, FINAL_EPS, 0.5)
    eps = np.array([sched(1.0 - n / STEPS) for n in range(STARTS, STEPS)])
    assert np.allclose(p[STARTS:].min(1) * A, eps, rtol=0, atol=1e-12)
    # Greedy action = first argmax of the recorded Q-values; Q-values = the snapshot network's.
    q = np.asarray(h.teacher_values)
    assert np.array_equal(p[STARTS:].argmax(1), q[STARTS:].argmax(1))
    net = copy.deepcopy(model.q_net)
    for s in h.snapshot_steps:
        net.load_state_dict({k: th.as_tensor(v) for k, v in h.weights_at(s).items()})
        with th.no_grad():
            q_s = net(model.policy.obs_to_tensor(np.array([h.obs[s]]))[0])[0].numpy()
        assert np.array_equal(q_s, q[s])
    # The episode structure is the env's: 20-step episodes ended by truncation, successors kept.
    assert h.n_episodes == STEPS // 20 and np.all(h.truncated == (np.arange(STEPS) % 20 == 19))
    greedy = p[np.arange(STEPS), p.argmax(1)]
    taken_greedy = (np.asarray(h.action) == p.argmax(1))[STARTS:]
    z = (taken_greedy.sum() - greedy[STARTS:].sum()) / np.sqrt(np.sum(greedy[STARTS:] * (1 - greedy[STARTS:])))
    assert abs(z) < 4.5


def _chi2(draws: np.ndarray, p: np.ndarray) -> float:
    counts = np.bincount(draws, minlength=p.size)
    assert np.all(counts[p == 0] == 0)
    keep = p > 0
    return stats.chisquare(counts[keep], p[keep] * len(draws)).pvalue


def test_recorded_distribution_reproduces_sb3_draws_including_ties(run):
    """SB3's own sampling (``predict`` with its epsilon, ``_sample_action`` in the warm-up) drawn
    many times agrees with the recorded distribution (chi-square); with all Q-values tied SB3 takes
    the first action, as recorded."""
    model, h = run
    model = copy.deepcopy(model)
    model.action_space.seed(13)   # SB3 draws with the global numpy RNG and the space's own
    np.random.seed(3)
    n = 6000
    for step in (400, 800, 1000):   # snapshot steps: the network SB3 acted with there
        model.q_net.load_state_dict({k: th.as_tensor(v) for k, v in h.weights_at(step).items()})
        obs = np.array([h.obs[step]])
        model.exploration_rate = float(h.teacher_probs[step].min() * h.n_actions)
        p, _, _ = step_probs(model, obs, step)
        assert np.allclose(p, h.teacher_probs[step], atol=1e-12)
        draws = np.array([int(model.predict(obs, deterministic=False)[0][0]) for _ in range(n)])
        assert _chi2(draws, p) > 1e-3
    # Warm-up: SB3's _sample_action before learning_starts.
    model.num_timesteps, model._last_obs = 0, np.array([h.obs[0]])
    draws = np.array([int(model._sample_action(STARTS, None, 1)[0][0]) for _ in range(n)])
    assert _chi2(draws, step_probs(model, model._last_obs, 0)[0]) > 1e-3
    # Ties: a network whose output ignores the input gives equal Q-values; torch's argmax is action 0.
    with th.no_grad():
        for prm in model.q_net.parameters():
            prm.zero_()
    model.num_timesteps, model.exploration_rate = STEPS, 0.3
    obs = np.array([h.obs[5]])
    p, q, _ = step_probs(model, obs, STEPS)
    assert np.all(q == q[0]) and p[0] == pytest.approx(0.3 / 5 + 0.7) and np.all(p[1:] == pytest.approx(0.3 / 5))
    draws = np.array([int(model.predict(obs, deterministic=False)[0][0]) for _ in range(n)])
    assert _chi2(draws, p) > 1e-3


# A DQN is outside the mixture's program class; the mixture may warn that it sees so.
@pytest.mark.filterwarnings("ignore:the teacher looks outside")
def test_q1_of_the_mixture_and_the_controls_on_the_sb3_history(run):
    """The README recipe: Q1 (teacher-forced) of the mixture, the uniform control and the frozen
    final DQN on an SB3 recording. The mixture's log-loss obeys its per-sequence bound against the
    uniform program (so it is never much worse than the uniform control) and beats it once the DQN
    has learned; the frozen final network predicts the end of the run best."""
    model, h = run
    mix = Mixture.for_env(ENV, 16, env_kwargs=KW)
    r_mix = teacher_forced(mix, h)
    r_uni = teacher_forced(UniformRandom(h.n_actions), h)
    r_frozen = teacher_forced(FrozenDQN(model), h, use_fast_path=False)
    mix.check_bound()
    late = slice(STEPS - 300, STEPS)
    bits_mix, bits_uni = r_mix.log_loss_bits, r_uni.log_loss_bits
    assert bits_uni.sum() == pytest.approx(STEPS * np.log2(5))
    assert bits_mix.sum() < bits_uni.sum()
    assert bits_mix[late].mean() < bits_uni[late].mean()
    assert r_frozen.summary(last=100)["mean_kl_bits"] < r_uni.summary(last=100)["mean_kl_bits"]
    assert r_frozen.summary(last=100)["argmax_agreement"] > 0.9


def test_sb3_recording_goes_to_minari_and_back_unchanged(run, tmp_path):
    """SB3 -> LearningHistory -> Minari -> LearningHistory: the DQN's exact probabilities, Q-values
    and weight snapshots survive the trip."""
    pytest.importorskip("minari", reason="minari not installed (pip install -e '.[minari]')")
    pytest.importorskip("h5py", reason="minari's HDF5 storage needs h5py (pip install -e '.[minari]')")
    from learners.interop.minari import from_minari, to_minari

    _, h = run
    to_minari(h, "sb3/darkroom/dqn-v0", root=tmp_path)
    back = from_minari("sb3/darkroom/dqn-v0", root=tmp_path)
    for c, v in h.columns().items():
        assert back.columns()[c].dtype == v.dtype and np.array_equal(back.columns()[c], v), c
    assert back.metadata == h.metadata and back.snapshot_steps == h.snapshot_steps
    assert all(np.array_equal(back.weights_at(1000)[k], v) for k, v in h.weights_at(1000).items())
