"""LearningHistory on disk: round trips, refusals that name the file, streaming and resume."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from learners import HistoryError, HistoryWriter, LearningHistory
from learners.checkpoint import CheckpointError, load_state, save_state


def make_history(T=60, A=3, S=7, seed=0, obs_shape=(), obs_dtype=np.int64, values=True, ep_len=10):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(A), T)
    action = np.array([rng.choice(A, p=p) for p in probs])
    trunc = (np.arange(T) % ep_len) == ep_len - 1
    obs = rng.integers(0, S, (T, *obs_shape)).astype(obs_dtype)
    final = {int(t): rng.integers(0, S, obs_shape).astype(obs_dtype) for t in np.flatnonzero(trunc)}
    return LearningHistory.from_arrays(
        obs=obs, action=action, reward=rng.random(T), terminated=np.zeros(T, bool), truncated=trunc,
        teacher_probs=probs, teacher_values=rng.normal(size=(T, A)) if values else None, final_obs=final,
        snapshots={0: {"Q": np.zeros((S, A))}, T: {"Q": rng.normal(size=(S, A)), "N": np.ones((S, A), np.int64)}},
        metadata={"env_id": "test", "note": "synthetic"},
    )


def assert_same(a: LearningHistory, b: LearningHistory):
    for k, v in a.columns().items():
        np.testing.assert_array_equal(np.asarray(v), np.asarray(b.columns()[k]), err_msg=k)
        assert np.asarray(v).dtype == np.asarray(b.columns()[k]).dtype, k
    assert a.snapshot_steps == b.snapshot_steps
    for s in a.snapshot_steps:
        wa, wb = a.weights_at(s), b.weights_at(s)
        assert wa.keys() == wb.keys()
        for k in wa:
            np.testing.assert_array_equal(wa[k], wb[k])


def test_round_trip_identical(tmp_path):
    h = make_history()
    h.save(tmp_path / "h")
    g = LearningHistory.load(tmp_path / "h")
    assert_same(h, g)
    assert g.metadata["note"] == "synthetic"
    assert isinstance(g.obs, np.memmap)  # streamed, not loaded
    assert g.next_obs(9) == h.next_obs(9) and g.next_obs(3) == h.obs[4]
    assert not (tmp_path / "h.partial").exists()


@settings(max_examples=25, deadline=None)
@given(T=st.integers(1, 40), A=st.integers(1, 6), shape=st.sampled_from([(), (3,), (2, 4)]),
       dtype=st.sampled_from([np.int64, np.uint8, np.float32]), values=st.booleans(), ep_len=st.integers(1, 7),
       seed=st.integers(0, 10_000))
def test_round_trip_property(tmp_path_factory, T, A, shape, dtype, values, ep_len, seed):
    h = make_history(T=T, A=A, obs_shape=shape, obs_dtype=dtype, values=values, ep_len=ep_len, seed=seed)
    d = tmp_path_factory.mktemp("rt") / "h"
    h.save(d)
    assert_same(h, LearningHistory.load(d))


def test_truncated_file_refused_with_its_name(tmp_path):
    make_history().save(tmp_path / "h")
    p = tmp_path / "h" / "reward.npy"
    p.write_bytes(p.read_bytes()[:-8])
    with pytest.raises(HistoryError, match=r"reward\.npy"):
        LearningHistory.load(tmp_path / "h")


def test_edited_file_refused_with_its_name(tmp_path):
    make_history().save(tmp_path / "h")
    p = tmp_path / "h" / "action.npy"
    b = bytearray(p.read_bytes())
    b[-1] ^= 1  # same size, one bit changed
    p.write_bytes(bytes(b))
    with pytest.raises(HistoryError, match=r"action\.npy.*sha256"):
        LearningHistory.load(tmp_path / "h")
    # Without checksum verification the invariants still catch this edit (an action out of range).
    with pytest.raises(HistoryError, match="action"):
        LearningHistory.load(tmp_path / "h", verify=False)


def test_edited_snapshot_and_manifest_refused(tmp_path):
    make_history().save(tmp_path / "h")
    snap = next((tmp_path / "h" / "snapshots").iterdir())
    snap.write_bytes(snap.read_bytes()[:-1] + b"\x00")
    with pytest.raises(HistoryError, match=snap.name):
        LearningHistory.load(tmp_path / "h")
    make_history().save(tmp_path / "g")
    m = json.loads((tmp_path / "g" / "manifest.json").read_text())
    m["files"]["teacher_probs"]["shape"] = [61, 3]
    (tmp_path / "g" / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(HistoryError, match=r"teacher_probs\.npy.*shape"):
        LearningHistory.load(tmp_path / "g")
    (tmp_path / "g" / "episode.npy").unlink()
    with pytest.raises(HistoryError, match=r"episode\.npy"):
        LearningHistory.load(tmp_path / "g")
    make_history().save(tmp_path / "f")
    m = json.loads((tmp_path / "f" / "manifest.json").read_text())
    m["snapshots"] = m["snapshots"][:1]  # a shortened list would load without the last weights
    (tmp_path / "f" / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(HistoryError, match=r"step_0+60\.safetensors: on disk but not listed"):
        LearningHistory.load(tmp_path / "f")


def test_invalid_arrays_name_the_field():
    h = make_history()
    cols = dict(obs=h.obs, action=h.action, reward=h.reward, terminated=h.terminated, truncated=h.truncated)
    bad = h.teacher_probs.copy()
    bad[5] *= 1.01
    with pytest.raises(HistoryError, match="teacher_probs: row 5"):
        LearningHistory.from_arrays(teacher_probs=bad, **cols)
    zero = np.zeros_like(h.teacher_probs)
    zero[np.arange(len(h)), (h.action + 1) % 3] = 1.0
    with pytest.raises(HistoryError, match="probability 0"):
        LearningHistory.from_arrays(teacher_probs=zero, **cols)
    with pytest.raises(HistoryError, match="reward"):
        LearningHistory.from_arrays(teacher_probs=h.teacher_probs, **{**cols, "reward": h.reward[:-1]})
    with pytest.raises(HistoryError, match="action"):
        LearningHistory.from_arrays(teacher_probs=h.teacher_probs, **{**cols, "action": h.action + 3})


def test_partial_directory_is_not_a_history(tmp_path):
    w = HistoryWriter(tmp_path / "h", obs_shape=(), obs_dtype=np.int64, n_actions=2)
    w.append(obs=0, action=1, reward=0.0, terminated=False, truncated=False, episode=0, teacher_probs=[0.5, 0.5])
    w.flush()
    with pytest.raises(HistoryError, match="manifest"):
        LearningHistory.load(tmp_path / "h.partial")
    with pytest.raises(HistoryError, match="no such"):
        LearningHistory.load(tmp_path / "h")
    w.abort()
    assert not (tmp_path / "h.partial").exists()


def test_existing_output_refused(tmp_path):
    make_history().save(tmp_path / "h")
    with pytest.raises(FileExistsError):
        make_history().save(tmp_path / "h")


def test_writer_resume_cuts_back_to_checkpointed_rows(tmp_path):
    h = make_history(T=50)
    kw = dict(obs_shape=(), obs_dtype=np.int64, n_actions=3, values_dtype=np.float64)

    def rows(lo, hi):
        return dict(obs=h.obs[lo:hi], action=h.action[lo:hi], reward=h.reward[lo:hi], terminated=h.terminated[lo:hi],
                    truncated=h.truncated[lo:hi], episode=h.episode[lo:hi], teacher_probs=h.teacher_probs[lo:hi],
                    segment=h.segment[lo:hi], teacher_values=h.teacher_values[lo:hi])

    def finals(lo, hi):
        m = (h.final_obs_step >= lo) & (h.final_obs_step < hi)
        return h.final_obs_step[m], h.final_obs[m]

    w = HistoryWriter(tmp_path / "h", **kw)
    w.add_snapshot(0, {"Q": np.zeros(2)})
    w.append_rows(**rows(0, 30))
    w.append_final_obs_rows(*finals(0, 30))
    n, nf = w.flush(), w.final_obs_rows
    w.append_rows(**rows(30, 42))  # written after the checkpoint, then "killed"
    w.append_final_obs_rows(*finals(30, 42))
    w.add_snapshot(40, {"Q": np.ones(2)})
    for c in w.cols.values():
        c.f.flush()
    w2 = HistoryWriter.resume(tmp_path / "h", rows=n, final_obs_rows=nf, **kw)
    assert sorted(p.name for p in (tmp_path / "h.partial" / "snapshots").iterdir()) == ["step_000000000000.safetensors"]
    w2.append_rows(**rows(30, 50))
    w2.append_final_obs_rows(*finals(30, 50))
    w2.add_snapshot(40, {"Q": np.full(2, 2.0)})
    g = w2.close()
    assert g.snapshot_steps == [0, 40] and g.weights_at(40)["Q"][0] == 2.0
    for k in ("obs", "action", "reward", "teacher_probs", "teacher_values", "final_obs_step", "final_obs"):
        np.testing.assert_array_equal(np.asarray(getattr(g, k)), np.asarray(getattr(h, k)), err_msg=k)


def test_truncate_and_episodes():
    h = make_history(T=60, ep_len=10)
    t = h.first_episodes(3)
    assert len(t) == 30 and t.n_episodes == 3
    np.testing.assert_allclose(t.episode_returns(), h.episode_returns()[:3])
    assert t.snapshot_steps == [0]
    with pytest.raises(ValueError):
        h.truncate(61)


def test_checkpoint_round_trip(tmp_path):
    import torch

    rng = np.random.default_rng(5)
    rng.random()
    state = {"rng": rng.bit_generator.state, "w": torch.arange(6.0).reshape(2, 3), "a": np.arange(4, dtype=np.int16),
             "nested": [1, (2.5, "x"), None, {"b": True}], "inf": float("inf")}
    save_state(tmp_path / "ck", state)
    save_state(tmp_path / "ck", state)  # replacing an existing checkpoint
    got = load_state(tmp_path / "ck")
    r2 = np.random.default_rng()
    r2.bit_generator.state = got["rng"]
    assert r2.random() == rng.random()
    assert torch.equal(got["w"], state["w"]) and got["w"].dtype == torch.float32
    np.testing.assert_array_equal(got["a"], state["a"])
    assert got["nested"] == [1, (2.5, "x"), None, {"b": True}] and got["inf"] == float("inf")
    with pytest.raises(CheckpointError):
        load_state(tmp_path / "nothing")
