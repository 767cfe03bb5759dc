"""The AD transformer: model, windows, in-context agent, evaluation helpers (fast tests)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from learners.history import LearningHistory
from learners.protocols import Transition
from learners.errors import HistoryFitError
from learners.transformer.agent import TransformerImitator, slide_cut
from learners.transformer.data import DataError, PackedStore, WindowSampler, pack_histories
from learners.transformer.model import ADTransformer, KVCache, ModelConfig, Tokens


# These models are tiny: one thread is faster than two, and much faster on a loaded machine.
pytestmark = pytest.mark.usefixtures("one_thread")


def _cfg(**kw) -> ModelConfig:
    base = dict(n_actions=5, obs_encoder="grid", obs_n=81, grid_shape=(9, 9), context=48, n_layer=2, n_head=2,
                d_model=32, dropout=0.0, attn_dropout=0.0, embd_dropout=0.0)
    base.update(kw)
    return ModelConfig(**base)


def _tokens(B: int, T: int, seed: int = 0, n_obs: int = 81, A: int = 5) -> Tokens:
    g = torch.Generator().manual_seed(seed)
    return Tokens(torch.randint(0, n_obs, (B, T), generator=g), torch.randint(0, A + 1, (B, T), generator=g),
                  torch.rand(B, T, generator=g), torch.rand(B, T, generator=g) < 0.2)


def _history(T: int, ep_len: int, seed: int = 0, A: int = 5, n_obs: int = 81) -> LearningHistory:
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.ones(A), size=T)
    a = np.array([rng.choice(A, p=row) for row in p])
    trunc = (np.arange(T) % ep_len) == ep_len - 1
    return LearningHistory.from_arrays(obs=rng.integers(0, n_obs, T), action=a, reward=(rng.random(T) < 0.2).astype(float),
                                       terminated=np.zeros(T, bool), truncated=trunc, teacher_probs=p,
                                       final_obs={int(t): 0 for t in np.flatnonzero(trunc)})


# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("positions", ["learned", "rotary"])
def test_model_is_causal_and_cache_matches_full_forward(positions):
    torch.manual_seed(0)
    m = ADTransformer(_cfg(positions=positions)).eval()
    tok = _tokens(3, 40)
    with torch.no_grad():
        full = m(tok)
        # Changing the future never changes the past.
        tok2 = Tokens(tok.obs.clone(), tok.prev_action.clone(), tok.prev_reward.clone(), tok.first.clone())
        tok2.obs[:, 25:] = (tok2.obs[:, 25:] + 7) % 81
        assert torch.allclose(m(tok2)[:, :25], full[:, :25], atol=1e-6)
        assert not torch.allclose(m(tok2)[:, 25:], full[:, 25:], atol=1e-3)
        # Token by token (and in chunks) through the KV cache = one full forward.
        cache = KVCache.empty(m.cfg, 3)
        parts = [m(tok[:, t : t + 1], cache=cache) for t in range(10)]
        parts.append(m(tok[:, 10:40], cache=cache))
        assert torch.allclose(torch.cat(parts, 1), full, atol=1e-5)


def test_model_rejects_overlong_context_and_bad_config():
    m = ADTransformer(_cfg())
    with pytest.raises(ValueError, match="context"):
        m(_tokens(1, 49))
    with pytest.raises(ValueError, match="grid_shape"):
        _cfg(grid_shape=(8, 9))
    with pytest.raises(ValueError, match="obs_encoder"):
        _cfg(obs_encoder="nope")


def test_pixel_encoder_shapes():
    cfg = ModelConfig(n_actions=4, obs_encoder="pixels", frame_stack=4, context=8, n_layer=1, n_head=2, d_model=32)
    m = ADTransformer(cfg)
    obs = torch.randint(0, 256, (2, 8, 4, 84, 84), dtype=torch.uint8)
    tok = Tokens(obs, torch.zeros(2, 8, dtype=torch.long), torch.zeros(2, 8), torch.zeros(2, 8, dtype=torch.bool))
    assert m(tok).shape == (2, 8, 4)


# ---------------------------------------------------------------------------------------------
# Windows
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def store(tmp_path_factory):
    hs = []
    for i in range(3):
        T = 10 * 6
        h = _history(T, 6, seed=i)
        # Observations encode (history, step) so windows can be checked exactly.
        hs.append(LearningHistory.from_arrays(obs=np.arange(T) + 100 * i, action=h.action, reward=h.reward,
                                              terminated=h.terminated, truncated=h.truncated, teacher_probs=h.teacher_probs))
    return PackedStore.open(pack_histories(hs, tmp_path_factory.mktemp("pack") / "p"), verify=True)


def test_windows_take_every_kth_episode_and_chain_previous_steps(store):
    s = WindowSampler(store, context=24, subsample=[3], seed=1)
    b = s.batch(0, 8)
    for row in range(8):
        obs = b.tokens.obs[row].numpy()
        h, step = obs // 100, obs % 100
        assert np.all(h == h[0])
        ep = step // 6
        assert set(np.diff(ep)) <= {0, 3}           # episodes e0, e0+3, e0+6, ...
        assert np.all(np.diff(step)[np.diff(ep) == 0] == 1)  # whole episodes, in order
        first = b.tokens.first[row].numpy()
        assert np.array_equal(first, step % 6 == 0)
        # The previous action/reward of a token is the previous token's (none at the window start).
        assert b.tokens.prev_action[row, 0] == 5
        assert torch.equal(b.tokens.prev_action[row, 1:], b.target[row, :-1])
        idx = h * 60 + step  # index of the step in the packed store
        assert np.array_equal(b.tokens.prev_reward[row, 1:].numpy(), store.reward[idx[:-1]])
        assert np.allclose(b.teacher_probs[row].numpy(), store.teacher_probs[idx])
        assert np.array_equal(b.target[row].numpy(), store.action[idx])
    assert b.mask.all()


def test_batches_are_a_pure_function_of_seed_and_step_and_rows_are_shards(store):
    s1 = WindowSampler(store, context=24, subsample=[1, 2], seed=5)
    s2 = WindowSampler(store, context=24, subsample=[1, 2], seed=5)
    a, b = s1.batch(7, 6), s2.batch(7, 6)
    assert torch.equal(a.tokens.obs, b.tokens.obs)
    assert not torch.equal(s1.batch(8, 6).tokens.obs, a.tokens.obs)
    half = s1.batch(7, 6, rows=slice(3, 6))
    assert torch.equal(half.tokens.obs, a.tokens.obs[3:])


def test_windows_past_the_end_are_masked(store):
    s = WindowSampler(store, context=60, subsample=[4], seed=0)  # 10 episodes at stride 4 cannot fit
    b = s.batch(0, 4)
    assert not b.mask.all()
    assert (b.mask.sum(1) >= 6).all()


def test_pack_refuses_mixed_action_spaces(tmp_path):
    with pytest.raises(DataError, match="actions"):
        pack_histories([_history(12, 4), _history(12, 4, A=3)], tmp_path / "p")
    assert not (tmp_path / "p").exists() and not (tmp_path / "p.partial").exists()


# ---------------------------------------------------------------------------------------------
# The in-context agent
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model():
    torch.manual_seed(3)
    return ADTransformer(_cfg()).eval()


def test_slide_cut_drops_back_to_an_episode_start():
    first = np.zeros(20, bool)
    first[[0, 5, 12, 17]] = True
    assert slide_cut(first, 10) == 12   # at least 10 dropped, then to the next start
    assert slide_cut(first, 3) == 5
    assert slide_cut(np.zeros(20, bool), 8) == 8  # no start left: keep the last 12
    assert slide_cut(first, 20) == 20


def test_predict_history_matches_the_step_loop_with_and_without_cache(model):
    h = _history(130, 10, seed=4)  # > 2 context windows: slides happen
    from experiments.protocol import teacher_forced

    fast = teacher_forced(TransformerImitator(model), h).probs
    loop = teacher_forced(TransformerImitator(model), h, use_fast_path=False).probs
    nocache = teacher_forced(TransformerImitator(model, use_cache=False), h, use_fast_path=False).probs
    assert np.allclose(fast, loop, atol=1e-6) and np.allclose(loop, nocache, atol=1e-6)
    assert np.allclose(fast.sum(1), 1.0) and (fast > 0).all()


def test_observe_history_leaves_the_context_the_step_loop_leaves(model):
    h = _history(100, 10, seed=5)
    a, b = TransformerImitator(model), TransformerImitator(model)
    a.observe_history(h)
    for t in range(len(h)):
        b.observe(Transition(int(h.obs[t]), int(h.action[t]), float(h.reward[t]), 0, False, bool(h.truncated[t])), intervention=False)
    assert a.context_length == b.context_length
    assert np.allclose(a.action_probs(3), b.action_probs(3), atol=1e-6)


def test_action_probs_is_pure_and_own_actions_enter_the_context(model):
    ag = TransformerImitator(model, seed=0)
    p1 = ag.action_probs(10)
    assert np.array_equal(p1, ag.action_probs(10)) and ag.context_length == 0
    ag.action_probs(11)  # a different observation, then back: same answer
    assert np.allclose(ag.action_probs(10), p1)
    a = ag.act(10)
    ag.observe(Transition(10, a, 1.0, 11, False, False), intervention=True)
    assert ag.context_length == 1
    # Closed loop and teacher-forced steps enter the context alike (AD acts on its own steps).
    b = TransformerImitator(model, seed=0)
    b.observe(Transition(10, a, 1.0, 11, False, False), intervention=False)
    assert np.allclose(ag.action_probs(11), b.action_probs(11))


def test_history_that_does_not_fit_the_model_is_refused(model):
    ag = TransformerImitator(model)
    with pytest.raises(HistoryFitError, match="actions"):
        ag.predict_history(_history(20, 5, A=4))
    with pytest.raises(HistoryFitError, match="observations"):
        ag.predict_history(_history(20, 5, n_obs=200))
    with pytest.raises(HistoryFitError):
        ag.action_probs(81)


def test_batched_rollouts_reproduce_closed_loop(model):
    from experiments.protocol import closed_loop
    from learners.transformer.incontext import incontext_rollouts

    tasks = [{"size": 9, "goal": [1, 1], "episode_len": 20}, {"size": 9, "goal": [4, 5], "episode_len": 20}]
    r = incontext_rollouts(model, "hypospace/DarkRoom-v0", tasks, [0, 3], 4)  # 80 steps > context 48
    for i, (task, seed) in enumerate([(t, s) for t in tasks for s in (0, 3)]):
        cl = closed_loop(TransformerImitator(model), "hypospace/DarkRoom-v0", 4, seed, env_kwargs=task)
        assert np.array_equal(cl.history.action, r.actions[i])
        assert np.array_equal(cl.returns, r.returns[i])


def test_frame_stacks_are_rebuilt_from_single_frames(tmp_path):
    """Pixels are stored once per step; a window's stack holds the frames before it in the same
    episode (the first frame repeated at an episode start)."""
    T, ep_len = 24, 8
    frames = (np.arange(T, dtype=np.uint8)[:, None, None] * np.ones((1, 2, 2), np.uint8))
    h = _history(T, ep_len, seed=1, n_obs=2)
    h = LearningHistory.from_arrays(obs=frames, action=h.action, reward=h.reward, terminated=h.terminated,
                                    truncated=h.truncated, teacher_probs=h.teacher_probs)
    st = PackedStore.open(pack_histories([h], tmp_path / "p"))
    s = WindowSampler(st, context=16, subsample=[1], seed=0, frame_stack=3)
    b = s.batch(0, 2)
    stack = b.tokens.obs[..., 0, 0].numpy().astype(int)  # [B, K, 3]: the step index of each stacked frame
    for row in stack:
        for st3 in row:
            t = int(st3[-1])
            e0 = t - t % ep_len
            assert list(st3) == [max(t - 2, e0), max(t - 1, e0), t]


def test_pixel_agent_fast_path_matches_step_loop():
    """Atari-style: single stored frames, stacks rebuilt per episode, contexts sliding."""
    from experiments.protocol import teacher_forced

    torch.manual_seed(0)
    m = ADTransformer(ModelConfig(n_actions=4, obs_encoder="pixels", frame_stack=4, context=8, n_layer=1, n_head=2,
                                  d_model=32, dropout=0.0, attn_dropout=0.0, embd_dropout=0.0)).eval()
    rng = np.random.default_rng(0)
    T = 15
    frames = rng.integers(0, 256, (T, 84, 84), dtype=np.uint8)
    trunc = (np.arange(T) % 5) == 4
    h = LearningHistory.from_arrays(obs=frames, action=rng.integers(0, 4, T), reward=np.zeros(T), terminated=np.zeros(T, bool),
                                    truncated=trunc, teacher_probs=np.full((T, 4), 0.25),
                                    final_obs={int(t): frames[t] for t in np.flatnonzero(trunc)})
    fast = teacher_forced(TransformerImitator(m), h).probs
    loop = teacher_forced(TransformerImitator(m), h, use_fast_path=False).probs
    assert np.allclose(fast, loop, atol=1e-6)
