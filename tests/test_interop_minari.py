"""Minari export and import: exact round trips, foreign datasets with unknown probabilities,
refusals, and datasets kept out of the user's home."""
from __future__ import annotations

import json
import os
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

minari = pytest.importorskip("minari", reason="minari not installed (pip install -e '.[minari]')")
pytest.importorskip("h5py", reason="minari's HDF5 storage needs h5py (pip install -e '.[minari]')")

import envs  # noqa: E402,F401  (registers hypospace/ envs)
from experiments.protocol import UniformRandom, teacher_forced  # noqa: E402
from learners import HistoryError, LearningHistory  # noqa: E402
from learners.interop import minari as mi  # noqa: E402
from learners.interop.unknown_probs import require_teacher_probs, teacher_probs_known  # noqa: E402
from learners.recorder import record  # noqa: E402
from learners.teachers import make_teacher  # noqa: E402

ENV, KW = "hypospace/DarkRoom-v0", {"size": 5, "goal": [1, 3]}


@pytest.fixture(autouse=True)
def minari_root(tmp_path, monkeypatch):
    root = tmp_path / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    return root


@pytest.fixture(scope="module")
def saved_history(tmp_path_factory):
    """A Q-learning Dark Room history as the project stores it (loaded back: JSON metadata, memory maps)."""
    env = gym.make(ENV, **KW)
    t = make_teacher("q_learning", env.observation_space, env.action_space, seed=1)
    h = record(t, ENV, env_kwargs=KW, episodes=25, seed=2, snapshot_every=100)
    d = tmp_path_factory.mktemp("h") / "dr"
    h.save(d)
    return LearningHistory.load(d)


def assert_identical(a: LearningHistory, b: LearningHistory) -> None:
    ca, cb = a.columns(), b.columns()
    assert ca.keys() == cb.keys()
    for c in ca:
        assert ca[c].dtype == cb[c].dtype and ca[c].shape == cb[c].shape, c
        assert np.array_equal(np.asarray(ca[c]), np.asarray(cb[c])), c
    assert a.metadata == b.metadata
    assert a.snapshot_steps == b.snapshot_steps
    for s in a.snapshot_steps:
        wa, wb = a.weights_at(s), b.weights_at(s)
        assert wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) and wa[k].dtype == wb[k].dtype for k in wa)


def test_round_trip_is_identical_and_minari_sees_one_episode_per_teacher_episode(saved_history, minari_root):
    h = saved_history
    d = mi.to_minari(h, "hypospace/darkroom/q-learning-v0", author="test")
    assert d == minari_root / "hypospace/darkroom/q-learning-v0"
    back = mi.from_minari("hypospace/darkroom/q-learning-v0")
    assert_identical(h, back)
    assert mi.from_minari(d).metadata == h.metadata          # by path as well as by id
    # Minari's own reader: episodes in order, exact probabilities per step in infos, metadata block.
    ds = minari.load_dataset("hypospace/darkroom/q-learning-v0")
    assert ds.total_episodes == h.n_episodes and ds.total_steps == len(h)
    starts = list(h.episode_starts()) + [len(h)]
    for e, ep in enumerate(ds.iterate_episodes()):
        a, b = starts[e], starts[e + 1]
        assert np.array_equal(ep.actions, h.action[a:b])
        assert np.array_equal(ep.infos["teacher_probs"][:-1], h.teacher_probs[a:b])
        assert np.array_equal(ep.infos["teacher_values"][:-1], h.teacher_values[a:b])
        assert np.array_equal(ep.observations[:-1], h.obs[a:b])
        assert ep.observations[-1] == h.next_obs(b - 1)
    block = ds.storage.metadata["hypospace"]
    assert block["env_id"] == ENV and block["env_kwargs"] == KW and block["teacher"]["teacher"] == "q_learning"
    assert block["seed"] == h.metadata["seed"] and block["exported_by"]["commit"]
    assert [s["step"] for s in block["snapshots"]] == h.snapshot_steps
    assert ds.spec.env_spec.id == ENV    # a registered env is recorded as Minari's env_spec too


def test_round_trip_float32_segments_and_unrecorded_successor(minari_root):
    """float32 probabilities, no values, two segments, an episode whose successor was not recorded
    and a last episode cut mid-way: all come back as they were."""
    rng = np.random.default_rng(0)
    T, A = 57, 3
    p = rng.dirichlet(np.ones(A), T).astype(np.float32)
    p /= p.sum(1, keepdims=True)
    act = np.array([rng.choice(A, p=r / r.sum()) for r in p.astype(np.float64)])
    term = np.zeros(T, bool)
    trunc = np.zeros(T, bool)
    term[[9, 30]] = True
    trunc[44] = True
    obs = rng.normal(size=(T, 2, 2)).astype(np.float32)
    h = LearningHistory.from_arrays(
        obs=obs, action=act, reward=rng.normal(size=T), terminated=term, truncated=trunc, teacher_probs=p,
        segment=(np.arange(T) >= 31).astype(np.int64), final_obs={9: obs[0] + 1, 44: obs[3] - 1},
        snapshots={0: {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}, 31: {"w": np.ones((2, 3), np.float32)}},
        metadata={"env_id": "NotRegistered-v0", "teacher": {"teacher": "mine", "eps": 0.1}, "seed": 3})
    mi.to_minari(h, "synthetic-v0")
    assert_identical(h, mi.from_minari("synthetic-v0"))


@pytest.mark.filterwarnings("ignore::UserWarning:minari.*")
def test_foreign_dataset_imports_with_probabilities_marked_unknown(minari_root):
    """A dataset made without this project (no block, no teacher_probs, a cut-off last episode)."""
    rng = np.random.default_rng(1)
    bufs = []
    for e, n in enumerate((5, 7, 4)):
        obs = rng.integers(0, 16, n + 1)
        term = np.zeros(n, bool)
        if e == 0:
            term[-1] = True
        trunc = np.zeros(n, bool)
        if e == 1:
            trunc[-1] = True
        bufs.append(minari.data_collector.EpisodeBuffer(
            id=e, observations=obs, actions=rng.integers(0, 4, n), rewards=rng.normal(size=n),
            terminations=term, truncations=trunc))
    minari.create_dataset_from_buffers("someone/frozenlake/random-v0", bufs, env="FrozenLake-v1",
                                       algorithm_name="random", author="someone else")
    h = mi.from_minari("someone/frozenlake/random-v0")
    assert len(h) == 16 and h.n_episodes == 3 and h.metadata["env_id"] == "FrozenLake-v1"
    assert not teacher_probs_known(h)
    assert h.metadata["minari_import"]["forced_truncation_episodes"] == [2]
    assert bool(h.truncated[-1]) and h.next_obs(15) == bufs[2].observations[-1]
    assert np.array_equal(h.teacher_probs.argmax(1), h.action) and np.all(h.teacher_probs.max(1) == 1.0)
    with pytest.raises(HistoryError, match=r"teacher_forced needs the teacher's action probabilities.*placeholder"):
        require_teacher_probs(h, "teacher_forced")
    # The actions alone are still scored: log-loss of a uniform control is exactly log2(4) bits.
    assert np.allclose(teacher_forced(UniformRandom(4), h).log_loss_bits, 2.0)
    # A foreign import re-exported and read back keeps its "unknown" mark.
    mi.to_minari(h, "someone/frozenlake/random-copy-v0")
    assert not teacher_probs_known(mi.from_minari("someone/frozenlake/random-copy-v0"))


def test_refusals_name_the_problem(saved_history, minari_root, tmp_path):
    with pytest.raises(HistoryError, match="dataset id"):
        mi.to_minari(saved_history, "../escape-v0")
    with pytest.raises(HistoryError, match="no such Minari dataset"):
        mi.from_minari("nothing/here-v0")
    mi.to_minari(saved_history, "dr-v0")
    with pytest.raises(FileExistsError):
        mi.to_minari(saved_history, "dr-v0")
    mi.to_minari(saved_history, "dr-v0", overwrite=True)
    # A dataset whose metadata lacks its spaces would make Minari build env_spec's environment.
    meta = minari_root / "dr-v0" / "data" / "metadata.json"
    m = json.loads(meta.read_text())
    del m["observation_space"]
    meta.write_text(json.dumps(m))
    with pytest.raises(HistoryError, match="refusing to build the environment"):
        mi.from_minari("dr-v0")
    # A format this machine cannot read (arrow without pyarrow, or arrow files that are not there).
    mi.to_minari(saved_history, "dr2-v0")
    meta = minari_root / "dr2-v0" / "data" / "metadata.json"
    meta.write_text(meta.read_text().replace('"data_format": "hdf5"', '"data_format": "arrow"'))
    with pytest.raises(HistoryError, match="dr2-v0"):
        mi.from_minari("dr2-v0")
    # A data file that is a symlink out of the dataset is not read.
    mi.to_minari(saved_history, "dr3-v0")
    main = minari_root / "dr3-v0" / "data" / "main_data.hdf5"
    os.replace(main, tmp_path / "elsewhere.hdf5")
    os.symlink(tmp_path / "elsewhere.hdf5", main)
    with pytest.raises(HistoryError, match="outside the dataset"):
        mi.from_minari("dr3-v0")


def test_failed_export_leaves_nothing(saved_history, minari_root, monkeypatch):
    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(mi, "save_file", boom)
    with pytest.raises(OSError, match="disk full"):
        mi.to_minari(saved_history, "dr-v0")
    assert os.listdir(minari_root) == []


def test_default_root_is_the_project_cache_not_home(saved_history, tmp_path, monkeypatch):
    monkeypatch.delenv("MINARI_DATASETS_PATH")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HYPOSPACE_CACHE", str(tmp_path / "cache"))
    d = mi.to_minari(saved_history, "dr-v0")
    assert d == tmp_path / "cache" / "minari" / "dr-v0"
    assert mi.from_minari("dr-v0").metadata == saved_history.metadata
    assert not Path(tmp_path / "home" / ".minari").exists() and "MINARI_DATASETS_PATH" not in os.environ


def test_teacher_forced_scores_only_the_actions_of_a_history_without_probabilities():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 3, 30)
    h = LearningHistory.from_arrays(obs=np.zeros(30, np.int64), action=a, reward=np.zeros(30),
                                    teacher_probs=np.eye(3)[a], terminated=np.ones(30, bool), truncated=np.zeros(30, bool),
                                    metadata={"teacher_probs_known": False})
    res = teacher_forced(UniformRandom(3), h)
    assert np.allclose(res.log_loss_bits, np.log2(3))
    assert np.all(np.isnan(res.kl_bits)) and np.all(np.isnan(res.agree))
    s = res.summary()
    assert "mean_kl_bits" not in s and s["teacher_probs"].startswith("unknown")
