"""AD on Atari at smoke scale, on tiny DQN recordings made here (experiments.train_dqn, 400 steps of
Breakout with 120-step episodes): it learns the DQN's policy better than uniform on a held-out
history, it acts on ALE with a KV cache that matches recomputation, training tokens equal
acting tokens, a killed run resumes identically, and the three misuses are clear errors."""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from experiments import atari_eval, train_dqn, train_transformer
from learners.history import LearningHistory
from learners.protocols import Transition
from learners.transformer.atari import (ActionSetError, AtariFitError, AtariHistory, AtariImitator, AtariInfo,
                                        AtariSpec, ConcatColumn, EncoderSawGameError, check_game_for,
                                        full_action_map, full_set_columns, prepare_atari)
from learners.transformer.checkpoint import latest_checkpoint
from learners.transformer.data import WindowSampler
from learners.transformer.frame_encoder import EncoderConfig
from learners.transformer.model import ADTransformer, ModelConfig
from learners.transformer.presets import preset
from learners.transformer.train import TrainConfig, train

pytestmark = pytest.mark.usefixtures("one_thread")
SHORT = "max_num_frames_per_episode=480"  # 120-step episodes: several per tiny history


def _quiet(fn, *a):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = fn(*a)
        except SystemExit as e:
            rc = e.code
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def dqn(tmp_path_factory):
    """Three tiny Breakout DQN histories (seeds 0-2); seed 2 is held out."""
    root = tmp_path_factory.mktemp("dqn")
    for s in range(3):
        rc, _, err = _quiet(train_dqn.main, ["--env", "ALE/Breakout-v5", "--env-kwargs", SHORT, "--preset", "smoke",
                                             "--steps", "400", "--learning-starts", "100", "--seed", str(s),
                                             "--snapshot-every", "100", "--checkpoint-every", "0", "--no-progress",
                                             "--out", str(root / f"b{s}")])
        assert rc == 0, err
    return root


@pytest.fixture(scope="module")
def trained(dqn, tmp_path_factory):
    """The smoke preset trained on seeds 0 and 1, validated on seed 2 (through the CLI)."""
    root = tmp_path_factory.mktemp("ad")
    rc, out, err = _quiet(train_transformer.main, ["--env", "atari", "--preset", "smoke", "--histories", str(dqn / "b0"),
                                                   str(dqn / "b1"), "--val-history", str(dqn / "b2"), "--out",
                                                   str(root / "run"), "--cache-dir", str(root / "cache"), "--no-progress",
                                                   "--steps", "60", "--checkpoint-every", "30"])
    assert rc == 0, err
    return root / "run", json.loads(out.strip().splitlines()[-1])


def _uniform_kl_bits(h: LearningHistory) -> float:
    p = np.asarray(h.teacher_probs, float)
    return float(np.mean(np.where(p > 0, p * np.log2(np.maximum(p, 1e-300) * p.shape[1]), 0).sum(1)))


def test_it_learns_the_dqn_policy_on_a_held_out_history(dqn, trained):
    run, res = trained
    held = LearningHistory.load(dqn / "b2")
    assert res["val_kl_bits"] < 0.8 * _uniform_kl_bits(held)
    meta = json.loads((run / "model" / "meta.json").read_text())
    info = AtariInfo.from_meta(meta)
    assert info.encoder == "frozen_ae" and info.encoder_games == ["Breakout"] and info.action_set == "full18"
    assert not info.encoder_saw_game_variant
    # Teacher-forced Q1 through the evaluation module: the model beats uniform on the held-out DQN.
    agent = AtariImitator.load(run)
    rows = atari_eval.q1({"transformer": agent, "uniform": atari_eval.UniformRandom(18)}, held, windows=2,
                         context=agent.inner.cfg.context, seed=0)
    kl = {r["imitator"]: r["value"] for r in rows if r["metric"] == "kl_bits" and r["decile"] == 0}
    assert kl["transformer"] < kl["uniform"]


def test_training_tokens_equal_acting_tokens(dqn, trained):
    """The frame stacks (and embeddings) a training window holds are what the agent computes
    from the env's own observations: the protocol is the DQN's."""
    run, _ = trained
    agent = AtariImitator.load(run)
    h = LearningHistory.load(dqn / "b0")
    data = prepare_atari(AtariSpec(histories=[str(dqn / "b0")]), EncoderConfig(), run, run.parent / "cache")
    s = WindowSampler(data.store, context=50, seed=0)
    idx = np.arange(0, 50)[None]
    b = s.gather(idx, np.ones_like(idx, bool))
    tok = agent.token_history(h, 0, 50)
    np.testing.assert_array_equal(b.tokens.obs[0].float().numpy(), np.asarray(tok.obs, np.float32))
    np.testing.assert_array_equal(b.tokens.prev_action[0, 1:].numpy(), np.asarray(h.action[:49]))
    # Replaying the history's actions in the env gives the same observations as the stored stacks.
    import envs
    from envs.atari import frame_stacks

    e = envs.make("ALE/Breakout-v5", max_num_frames_per_episode=480)
    o, _ = e.reset(seed=0)
    e.close()
    np.testing.assert_array_equal(o.shape, frame_stacks(h, [0]).shape[1:])


def test_acting_with_the_kv_cache_matches_recomputation(trained):
    run, _ = trained
    fast, slow = AtariImitator.load(run, seed=3), AtariImitator.load(run, seed=3, use_cache=False)
    import envs

    e = envs.make("ALE/Breakout-v5", max_num_frames_per_episode=480)
    o, _ = e.reset(seed=1)
    rng = np.random.default_rng(0)
    n_done = 0
    for t in range(140):  # past the 96-token context: the window slides once
        p, q = fast.action_probs(o), slow.action_probs(o)
        np.testing.assert_allclose(p, q, atol=1e-5)
        assert p.shape == (18,) and abs(p.sum() - 1) < 1e-9
        a = int(rng.choice(18, p=p))
        o2, r, term, trunc, _ = e.step(a)
        for ag in (fast, slow):
            ag.observe(Transition(o, a, r, o2, term, trunc))
        if term or trunc:
            n_done += 1
            o2, _ = e.reset()
        o = o2
    e.close()
    assert n_done >= 1 and fast.inner.context_length < 140
    res = atari_eval.act_for_steps(fast, "ALE/Breakout-v5", 260, 0, env_kwargs={"max_num_frames_per_episode": 480})
    assert len(res["returns"]) >= 2


def test_resume_gives_the_same_weights(dqn, tmp_path):
    spec = AtariSpec(histories=[str(dqn / "b0"), str(dqn / "b1")])
    P = preset("atari", "smoke")
    enc = EncoderConfig(**P["encoder"])
    mcfg = ModelConfig(**{**P["model"], "n_actions": 18, "obs_encoder": "vector", "obs_dim": enc.emb_dim})
    tcfg = TrainConfig(**{**P["train"], "steps": 12, "checkpoint_every": 5, "eval_every": 0})

    def run(d: Path, stop: int | None, resume: bool = False):
        data = prepare_atari(spec, enc, d, tmp_path / "cache")
        return train(mcfg, tcfg, data.store, d, resume=resume, progress=False, stop_after=stop,
                     data_info={"atari": {"encoder_sha256": data.info.encoder_sha256}})

    whole = run(tmp_path / "a", None).model.state_dict()
    run(tmp_path / "b", 7)  # killed after 7 updates; the checkpoint at 5 survives
    assert latest_checkpoint(tmp_path / "b").name.endswith("5")
    resumed = run(tmp_path / "b", None, resume=True).model.state_dict()
    for k in whole:
        torch.testing.assert_close(resumed[k], whole[k], rtol=0, atol=0)


def test_frames_that_do_not_fit_are_a_clear_error(tmp_path):
    T = 50
    h = LearningHistory.from_arrays(obs=np.zeros((T, 64, 64), np.uint8), action=np.zeros(T, int), reward=np.zeros(T),
                                    terminated=np.zeros(T, bool), truncated=np.r_[np.zeros(T - 1, bool), True],
                                    teacher_probs=np.full((T, 18), 1 / 18), metadata={"env_id": "ALE/Breakout-v5"})
    h.save(tmp_path / "small")
    with pytest.raises(AtariFitError, match="84x84"):
        AtariHistory.open(tmp_path / "small")
    rc, _, err = _quiet(train_transformer.main, ["--env", "atari", "--preset", "smoke", "--histories", str(tmp_path / "small"),
                                                 "--out", str(tmp_path / "o"), "--cache-dir", str(tmp_path / "c"), "--no-progress"])
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "84x84" in err and not (tmp_path / "o").exists()


def test_action_sets(tmp_path):
    """Minimal action sets map onto the full 18; a model on another action set is refused."""
    amap = full_action_map("Breakout")
    assert amap == (0, 1, 3, 4)  # NOOP, FIRE, RIGHT, LEFT
    T = 20
    p = np.full((T, 4), 0.25)
    h = LearningHistory.from_arrays(obs=np.zeros((T, 84, 84), np.uint8), action=np.arange(T) % 4, reward=np.zeros(T),
                                    terminated=np.zeros(T, bool), truncated=np.zeros(T, bool), teacher_probs=p,
                                    metadata={"env_id": "ALE/Breakout-v5"})
    a, q = full_set_columns(h, "Breakout")
    np.testing.assert_array_equal(a, np.array(amap)[np.arange(T) % 4])
    assert q.shape == (T, 18) and np.allclose(q.sum(1), 1) and np.all(q[:, [2, 5]] == 0)
    h5 = LearningHistory.from_arrays(obs=np.zeros((T, 84, 84), np.uint8), action=np.zeros(T, int), reward=np.zeros(T),
                                     terminated=np.zeros(T, bool), truncated=np.zeros(T, bool),
                                     teacher_probs=np.full((T, 5), 0.2), metadata={"env_id": "ALE/Breakout-v5"})
    with pytest.raises(ActionSetError, match="5 actions"):
        full_set_columns(h5, "Breakout")
    toy = ADTransformer(ModelConfig(n_actions=5, obs_encoder="vector", obs_dim=16))
    with pytest.raises(ActionSetError, match="18"):
        AtariImitator(toy, AtariInfo(encoder="nature_cnn"))
    with pytest.raises(ActionSetError, match="not trained on Atari"):
        AtariInfo.from_meta({"data": {"env_id": "hypospace/DarkRoom-v0"}})


def test_held_out_game_frames_never_enter_training_unflagged(dqn, tmp_path):
    T = 240
    rng = np.random.default_rng(0)
    si = LearningHistory.from_arrays(obs=rng.integers(0, 255, (T, 84, 84), dtype=np.uint8), action=rng.integers(0, 18, T),
                                     reward=np.zeros(T), terminated=(np.arange(T) % 120) == 119, truncated=np.zeros(T, bool),
                                     teacher_probs=np.full((T, 18), 1 / 18), metadata={"env_id": "ALE/SpaceInvaders-v5"})
    si.save(tmp_path / "si")
    base = ["--env", "atari", "--preset", "smoke", "--histories", str(dqn / "b0"), str(tmp_path / "si"),
            "--cache-dir", str(tmp_path / "c"), "--no-progress", "--steps", "4", "--checkpoint-every", "4"]
    rc, _, err = _quiet(train_transformer.main, base + ["--out", str(tmp_path / "refused")])
    assert rc == 2 and "SpaceInvaders" in err and "--encoder-saw-game" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "refused").exists()
    rc, _, err = _quiet(train_transformer.main, base + ["--out", str(tmp_path / "saw"), "--encoder-saw-game"])
    assert rc == 0, err
    info = AtariInfo.from_meta(json.loads((tmp_path / "saw" / "model" / "meta.json").read_text()))
    assert info.encoder_games == ["Breakout", "SpaceInvaders"] and info.encoder_saw_game_variant
    # Asked for Space Invaders without the flag: refused, in the library and the CLI.
    with pytest.raises(EncoderSawGameError):
        check_game_for(AtariInfo(encoder_games=["Breakout", "SpaceInvaders"], training_games=["Breakout"]), "SpaceInvaders")
    rc, _, err = _quiet(atari_eval.main, ["q3", "--run", str(tmp_path / "saw"), "--steps", "10", "--out", str(tmp_path / "q3.json")])
    assert rc == 2 and "encoder saw SpaceInvaders" in err.replace("saw SpaceInvaders frames", "saw SpaceInvaders") \
        and not (tmp_path / "q3.json").exists()


def test_concat_column_reads_like_a_concatenation():
    rng = np.random.default_rng(0)
    parts = [rng.integers(0, 9, (n, 3)) for n in (5, 1, 7)]
    col, ref = ConcatColumn(parts), np.concatenate(parts)
    idx = rng.integers(0, len(ref), (4, 6))
    np.testing.assert_array_equal(col[idx], ref[idx])
    np.testing.assert_array_equal(col[2:11], ref[2:11])


@pytest.mark.slow
def test_end_to_end_cnn_trains_and_acts(dqn, tmp_path):
    rc, out, err = _quiet(train_transformer.main, ["--env", "atari", "--preset", "smoke", "--encoder", "nature_cnn",
                                                   "--histories", str(dqn / "b0"), str(dqn / "b1"), "--val-history",
                                                   str(dqn / "b2"), "--out", str(tmp_path / "run"), "--cache-dir",
                                                   str(tmp_path / "c"), "--no-progress", "--steps", "40"])
    assert rc == 0, err
    res = json.loads(out.strip().splitlines()[-1])
    assert res["val_kl_bits"] < _uniform_kl_bits(LearningHistory.load(dqn / "b2"))
    agent = AtariImitator.load(tmp_path / "run")
    r = atari_eval.act_for_steps(agent, "ALE/Breakout-v5", 130, 0, env_kwargs={"max_num_frames_per_episode": 480})
    assert len(r["returns"]) >= 1


def test_a_shared_encoder_is_reused_but_never_past_a_beyond_cut(dqn, trained, tmp_path):
    """Seeds and controls share the encoder trained once (same weights, cached embeddings); a
    'beyond' run (histories cut at T) refuses an encoder that saw frames after T."""
    run, _ = trained
    enc = EncoderConfig(**preset("atari", "smoke")["encoder"])
    shared = prepare_atari(AtariSpec(histories=[str(dqn / "b0")], encoder_from=str(run)), enc, tmp_path / "a",
                           run.parent / "cache")
    assert shared.info.encoder_sha256 == AtariInfo.from_meta(json.loads((run / "model" / "meta.json").read_text())).encoder_sha256
    from learners.errors import HistoryFitError

    with pytest.raises(HistoryFitError, match="past this run's cut at 200"):
        prepare_atari(AtariSpec(histories=[str(dqn / "b0")], first_steps=200, encoder_from=str(run)), enc, tmp_path / "b",
                      run.parent / "cache")


def test_the_frozen_dqn_control_acts_as_the_dqn_did_at_T(dqn):
    """Q2's "frozen at T" control: the snapshot at T with epsilon at T gives exactly the recorded
    eps-greedy probabilities at T (and it never changes after)."""
    from envs.atari import frame_stacks

    h = LearningHistory.load(dqn / "b2")
    for T in (100, 300):
        frozen = atari_eval.frozen_dqn(h, T, seed=0)
        st = frame_stacks(h, [T])[0]
        np.testing.assert_allclose(frozen.action_probs(st), np.asarray(h.teacher_probs[T]), rtol=0, atol=1e-12)
    m = atari_eval.to_measured([{"imitator": "transformer", "variant": "", "metric": "continuation_ratio", "T": 100,
                                 "num": 0.5, "den": 2.0}], "transformer")
    assert m.metrics[("continuation_ratio", 100)] == {"kind": "ratio", "num": [0.5], "den": [2.0]}
