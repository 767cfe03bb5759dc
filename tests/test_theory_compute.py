"""Compute formulas against torch's flop counter on the real networks, their symbolic forms
against the numeric ones, and the orders they must keep (more size, more compute)."""
from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import sympy as sp
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from learners.teachers.dqn import DQN, DQNConfig
from learners.transformer.model import ADTransformer, ModelConfig, Tokens
from learners.transformer.presets import preset
from theory import compute as C


def _close(measured, formula, rel=0.10):
    assert measured > 0
    assert abs(formula - measured) <= rel * measured, (measured, formula)


def _flops(fn) -> int:
    # The math attention backend runs QK^T and AV as bmm, which the counter sees; the fused CPU
    # kernel is invisible to it.
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as fc:
        fn()
    return fc.get_total_flops()


def _dqn(obs_space, n_actions, **cfg):
    return DQN(obs_space, gym.spaces.Discrete(n_actions), DQNConfig(preset="smoke", **cfg), seed=0)


@pytest.mark.parametrize("n_actions,batch,train_every", [(4, 32, 4), (18, 8, 1)])
def test_dqn_nature_cnn_step_matches_flop_counter(n_actions, batch, train_every):
    dqn = _dqn(gym.spaces.Box(0, 255, (4, 84, 84), np.uint8), n_actions, batch_size=batch, train_every=train_every)
    layers = C.nature_cnn_layers(n_actions)
    assert C.n_params(layers) == sum(p.numel() for p in dqn.q.parameters())
    x = torch.randint(0, 256, (1, 4, 84, 84), dtype=torch.uint8).float() / 255.0
    acting = _flops(lambda: dqn.q(x))
    xb, nb = x.expand(batch, -1, -1, -1).contiguous(), x.expand(batch, -1, -1, -1).contiguous()
    a = torch.randint(0, n_actions, (batch,))

    def update():  # DQN._update's network work: target forward, online forward + backward
        with torch.no_grad():
            y = dqn.target(nb).max(dim=1).values
        q = dqn.q(xb).gather(1, a[:, None]).squeeze(1)
        torch.nn.functional.mse_loss(q, y).backward()

    upd = _flops(update)
    cost = C.dqn_flops_per_step(layers, batch, train_every)
    assert cost["acting"] == acting  # exact: the counter counts conv and matmul as we do
    _close(upd, cost["update"], rel=0.01)
    _close(acting + upd / train_every, cost["per_step_matmul"], rel=0.01)
    # Adam's elementwise work is outside the counter; it stays a small share of a step.
    assert 0 < cost["per_step"] - cost["per_step_matmul"] < 0.05 * cost["per_step"]


def test_dqn_mlp_on_one_hot_matches_flop_counter():
    dqn = _dqn(gym.spaces.Discrete(25), 5, mlp_hidden=[64, 32], batch_size=16, train_every=2)
    layers = C.mlp_layers(25, [64, 32], 5)
    x = torch.nn.functional.one_hot(torch.arange(16) % 25, 25).float()
    assert _flops(lambda: dqn.q(x[:1])) == C.forward_flops(layers)
    train = _flops(lambda: dqn.q(x).sum().backward())
    _close(train, 16 * (C.forward_flops(layers) + C.backward_flops(layers)), rel=0.01)


@pytest.mark.parametrize("n_layer,d_model,n_head,T", [(2, 32, 4, 64), (3, 64, 4, 128)])
def test_ad_transformer_forward_and_train_match_flop_counter(n_layer, d_model, n_head, T):
    cfg = ModelConfig(n_actions=5, obs_encoder="grid", obs_n=81, context=T, n_layer=n_layer, d_model=d_model,
                      n_head=n_head, dropout=0.0, attn_dropout=0.0, embd_dropout=0.0)
    model = ADTransformer(cfg)
    assert C.ad_transformer_params(n_layer, d_model, 5, "grid") == model.n_params()
    B = 2
    tok = Tokens(torch.randint(0, 81, (B, T)), torch.randint(0, 6, (B, T)), torch.rand(B, T),
                 torch.zeros(B, T, dtype=torch.bool))
    fwd = _flops(lambda: model(tok)) / (B * T)
    train = _flops(lambda: model(tok).sum().backward()) / (B * T)
    # A dense kernel runs both attention products over the whole window (masked entries too).
    _close(fwd, C.ad_forward_flops_per_token(n_layer, d_model, T, 5, "grid", attention="dense"))
    _close(train, C.ad_train_flops_per_token(n_layer, d_model, T, 5, "grid", attention="dense"))
    # Kaplan's count = the same with attention over the causal half of the window, and its
    # training form is the model's own ``flops_per_token`` (6N + 6 L T d).
    attn = 4 * n_layer * T * d_model
    _close(fwd - attn / 2, C.ad_forward_flops_per_token(n_layer, d_model, T, 5, "grid"))
    assert C.transformer_train_flops_per_token(model.n_params(), n_layer, T, d_model) == pytest.approx(
        model.flops_per_token(T))


def test_ad_transformer_pixel_encoder_matches_flop_counter():
    T, B = 8, 2
    cfg = ModelConfig(n_actions=4, obs_encoder="pixels", context=T, n_layer=2, d_model=32, n_head=4,
                      dropout=0.0, attn_dropout=0.0, embd_dropout=0.0)
    model = ADTransformer(cfg)
    assert C.ad_transformer_params(2, 32, 4, "pixels") == model.n_params()
    tok = Tokens(torch.randint(0, 256, (B, T, 4, 84, 84), dtype=torch.uint8), torch.randint(0, 5, (B, T)),
                 torch.rand(B, T), torch.zeros(B, T, dtype=torch.bool))
    _close(_flops(lambda: model(tok)) / (B * T), C.ad_forward_flops_per_token(2, 32, T, 4, "pixels", attention="dense"))
    _close(_flops(lambda: model(tok).sum().backward()) / (B * T),
           C.ad_train_flops_per_token(2, 32, T, 4, "pixels", attention="dense"))
    # 2 x params would undercount a convolution by the number of its output pixels
    assert C.ad_forward_flops_per_token(2, 32, T, 4, "pixels") > 10 * 2 * model.n_params()


def test_symbolic_forms_evaluate_to_the_numeric_formulas():
    ex = C.expressions()
    sym = {str(s): s for e in ex.values() for s in e.free_symbols}
    rng = np.random.default_rng(0)
    for _ in range(5):
        A, B, k = int(rng.integers(2, 19)), int(rng.integers(1, 65)), int(rng.integers(1, 9))
        N, L, T, d = (int(rng.integers(10, 10**6)), int(rng.integers(1, 13)), int(rng.integers(1, 4097)),
                      int(rng.integers(8, 1025)))
        n, H, P, F = (int(rng.integers(1, 10**5)), int(rng.integers(1, 200)), int(rng.integers(1, 10**6)),
                      int(rng.integers(1, 10**4)))
        vals = {"A": A, "B": B, "k": k, "N": N, "L": L, "T": T, "d": d, "n": n, "H": H, "P": P, "F": F}
        sub = {sym[s]: v for s, v in vals.items() if s in sym}
        got = {name: float(e.subs(sub)) for name, e in ex.items()}
        dqn = C.dqn_flops_per_step(C.nature_cnn_layers(A), B, k)
        want = {
            "tabular_q_learning_per_step": C.tabular_teacher_flops_per_step(A, "q_learning"),
            "tabular_sarsa_per_step": C.tabular_teacher_flops_per_step(A, "sarsa"),
            "dqn_atari_per_step": dqn["per_step"], "dqn_atari_per_step_matmul": dqn["per_step_matmul"],
            "mixture_per_action": C.mixture_flops_per_action(P, A),
            "transformer_forward_per_token": C.transformer_forward_flops_per_token(N, L, T, d),
            "transformer_train_per_token": C.transformer_train_flops_per_token(N, L, T, d),
            "td_simulation_per_token": C.td_transformer(n, F, T)["flops_per_token"],
            "gd_simulation_per_token": C.gd_transformer(n, F, T)["flops_per_token"],
            "td_planning_simulation_per_token": C.td_transformer(C.planning_depth(H), F, T)["flops_per_token"],
        }
        assert set(got) == set(want)
        for name in want:
            assert got[name] == pytest.approx(want[name], rel=1e-12), name


def test_formulas_grow_with_the_sizes_they_depend_on():
    """Every partial derivative has the sign it should, at random sizes: cost grows with actions,
    batch, parameters, layers, context, width, updates, horizon, programs and features, and falls
    with the interval between DQN updates."""
    ex = C.expressions()
    falls = {("dqn_atari_per_step", "k"), ("dqn_atari_per_step_matmul", "k")}
    rng = np.random.default_rng(1)
    for name, e in ex.items():
        syms = sorted(e.free_symbols, key=str)
        assert syms, name
        for _ in range(5):
            at = {s: int(rng.integers(1, 10**4)) for s in syms}
            for s in syms:
                slope = float(sp.diff(e, s).subs(at))
                assert (slope < 0) if (name, str(s)) in falls else (slope > 0), (name, s)
    # a tabular step touches two rows whatever the number of states: no |S| in the cost
    assert {str(s) for s in ex["tabular_q_learning_per_step"].free_symbols} == {"A"}
    assert C.forward_flops(C.nature_cnn_layers(4, frames=8)) > C.forward_flops(C.nature_cnn_layers(4))
    assert C.mixture_flops_per_action(1000, 5, n_tables=10) < C.mixture_flops_per_action(1000, 5)


def test_mixture_cost_relates_to_its_benchmark():
    # one hypothesis-step of a program owning its table, A = 5: 3A + 3 (policy, mix, posterior) + A + 4 (TD)
    assert C.mixture_flops_per_hypothesis_step(5) == 32
    assert C.mixture_flops_per_action(139_000, 5) == 139_000 * 32
    assert C.mixture_seconds_per_action(1.2e8) == pytest.approx(1.0)
    assert C.mixture_implied_flops_per_s(5) == pytest.approx(32 * 1.2e8)


def test_oom_table_covers_the_ladder_and_orders_its_estimates():
    rows = C.oom_table()
    names = [r["name"] for r in rows]
    assert names[0].startswith("bandit") and "9x9" in names[2] and "Atari" in names[-1]
    for r in rows:
        assert 0 < r["teacher_flops_per_step"]
        assert r["sim_flops_per_step_low"] <= r["sim_flops_per_step_high"]
        assert r["ooms_low"] <= r["ooms_high"] < r["ooms_high_recompute"]
        assert r["ooms_low"] == pytest.approx(math.log10(r["sim_flops_per_step_low"] / r["teacher_flops_per_step"]))
        assert r["question_band"] == (3.0, 5.0)
        lo, hi = r["question_band"]
        want = "below" if r["ooms_high"] < lo else "beyond" if r["ooms_low"] > hi else "overlaps"
        assert r["verdict"] == want
    # the teacher's own cost: O(A) for the tabular rungs, the DQN update for Atari
    assert rows[2]["teacher_flops_per_step"] == 2 * 5 + 5
    assert rows[-1]["teacher_flops_per_step"] == pytest.approx(C.dqn_atari_flops_per_step()["per_step"])
    # a bigger grid needs more to simulate, at the same teacher cost per step
    assert rows[2]["ooms_low"] > rows[1]["ooms_low"] and rows[2]["ooms_high"] > rows[1]["ooms_high"]


def test_simulation_cost_rejects_an_unknown_construction_field():
    with pytest.raises(ValueError):
        C.transformer_forward_flops_per_token(1, 1, 1, 1, attention="sparse")
    with pytest.raises(ValueError):
        C.td_update_flops(5, "double_q")


def test_oom_table_against_the_imitators_forward_pass():
    rungs = C.default_rungs()
    families = {"bandit": rungs[0], "darkroom": rungs[2]}
    for family, rung in families.items():
        # the rung's imitator is the AD transformer's default preset, as the model is built
        m = preset(family, "default")["model"]
        im = rung["imitator"]
        assert (im["n_layer"], im["d_model"], im["n_ctx"], im["obs_encoder"]) == (
            m["n_layer"], m["d_model"], m["context"], m["obs_encoder"])
    rows = C.oom_table(rungs)
    for row, rung in zip(rows, rungs):
        if "imitator" not in rung:
            assert "verdict_vs_imitator" not in row
            continue
        f = row["imitator_flops_per_step"]
        assert row["ooms_vs_imitator_low"] == pytest.approx(math.log10(row["sim_flops_per_step_low"] / f))
        assert row["ooms_vs_imitator_high"] - row["ooms_vs_imitator_low"] == pytest.approx(
            row["ooms_high"] - row["ooms_low"])
    text = C.format_oom_table(rows)
    assert len(text.splitlines()) == len(rows) + 1 and all(r["verdict"] in text for r in rows)


def test_one_softmax_attention_layer_computes_the_bandit_teachers_arm_means():
    """What the bandit's low estimate (depth 1) rests on: a softmax head whose keys are the pulled
    arms (one-hot) and values the rewards returns, for a query arm, the sample mean of that arm's
    rewards -- the eps-greedy teacher's whole state -- in one layer."""
    rng = np.random.default_rng(4)
    A, n, beta = 5, 100, 60.0
    arms = rng.integers(A, size=n)
    arms[:A] = np.arange(A)  # every arm pulled at least once
    rewards = (rng.random(n) < rng.random(A)[arms]).astype(float)
    keys = np.eye(A)[arms]
    for a in range(A):
        logits = beta * keys @ np.eye(A)[a]
        w = np.exp(logits - logits.max())
        head = (w / w.sum()) @ rewards
        assert head == pytest.approx(rewards[arms == a].mean(), abs=1e-9)
    rung = C.default_rungs()[0]
    assert C.simulation_cost(rung)["depth_low"] == 1 and rung["feature_dim"] == A
