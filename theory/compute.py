"""Compute per step of teachers and imitators, and of simulating a teacher's learning in a forward pass.

Conventions. FLOPs count a multiply-add as 2 (as ``torch.utils.flop_counter`` does); elementwise
work in the tabular accounting (a comparison, an add, a random draw) counts 1. Every formula is
written in plain arithmetic on its arguments, so it evaluates numbers *and* builds a ``sympy``
expression when given symbols (``expressions()`` collects them); ``conv_out`` uses ``//``, which
sympy turns into ``floor``.

What is measured against what (tests): the network formulas equal torch's flop counter on the
real DQN and AD networks (matmuls and convolutions; the counter ignores elementwise work, so
optimizer and activation terms are reported separately and left out of that comparison).

The simulation section answers one question per rung: how many FLOPs per step would a forward
pass need to *run the teacher's learning* by the published constructions, against what the
teacher itself spends per step -- the ratio in orders of magnitude (OOMs).
"""
from __future__ import annotations

import math
from typing import Any

import sympy as sp

# ---------------------------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------------------------


def conv_out(size, kernel, stride):
    """Output side of a valid (unpadded) convolution."""
    return (size - kernel) // stride + 1


def conv2d_flops(c_in, c_out, kernel, h_out, w_out):
    """Forward FLOPs of a 2-d convolution (bias excluded): 2 * c_in * k^2 * c_out per output pixel."""
    return 2 * c_in * kernel * kernel * c_out * h_out * w_out


def linear_flops(d_in, d_out):
    """Forward FLOPs of a dense layer on one input (bias excluded)."""
    return 2 * d_in * d_out


def nature_cnn_layers(n_actions, frames=4, size=84, head=True) -> list[dict[str, Any]]:
    """Layer shapes of the Nature DQN network (Mnih et al. 2015): conv 32x8x8/4, 64x4x4/2,
    64x3x3/1, fc 512, fc n_actions, on ``frames`` x ``size`` x ``size`` inputs. Each entry has
    ``flops`` (forward, one input), ``params`` (weights + biases) and ``input_grad_flops`` (the
    backward work of the gradient w.r.t. the layer's input, = forward FLOPs). With
    ``head=False`` the two dense layers are left out (the conv trunk only)."""
    out = []
    c, s = frames, size
    for c_out, k, st in ((32, 8, 4), (64, 4, 2), (64, 3, 1)):
        so = conv_out(s, k, st)
        f = conv2d_flops(c, c_out, k, so, so)
        out.append({"kind": "conv", "c_in": c, "c_out": c_out, "kernel": k, "stride": st, "out_side": so,
                    "flops": f, "params": c * k * k * c_out + c_out, "input_grad_flops": f})
        c, s = c_out, so
    flat = c * s * s
    if head:
        for d_in, d_out in ((flat, 512), (512, n_actions)):
            f = linear_flops(d_in, d_out)
            out.append({"kind": "linear", "d_in": d_in, "d_out": d_out, "flops": f,
                        "params": d_in * d_out + d_out, "input_grad_flops": f})
    return out


def mlp_layers(d_in, hidden, n_actions) -> list[dict[str, Any]]:
    """Layer shapes of an MLP Q-network (the DQN teacher on one-hot or vector observations)."""
    out, d = [], d_in
    for w in list(hidden) + [n_actions]:
        f = linear_flops(d, w)
        out.append({"kind": "linear", "d_in": d, "d_out": w, "flops": f, "params": d * w + w, "input_grad_flops": f})
        d = w
    return out


def forward_flops(layers):
    """Forward FLOPs of a stack of layers on one input."""
    return sum(l["flops"] for l in layers)


def n_params(layers):
    return sum(l["params"] for l in layers)


def backward_flops(layers, input_requires_grad: bool = False):
    """Backward FLOPs on one input: weight gradients (= forward) for every layer, input gradients
    (= forward) for every layer but the first when the network's input needs no gradient (raw
    observations never do), so backward = 2 x forward - the first layer's input gradient."""
    f = forward_flops(layers)
    skip = 0 if input_requires_grad else layers[0]["input_grad_flops"]
    return 2 * f - skip


# ---------------------------------------------------------------------------------------------
# Teachers
# ---------------------------------------------------------------------------------------------
TD_RULES = ("q_learning", "sarsa", "expected_sarsa", "bandit_mean")

#: Elementwise operations per parameter of one Adam step: the two moment updates (3 + 4), bias
#: correction folded into the step size, sqrt, add eps, divide, scale, subtract (5).
ADAM_FLOPS_PER_PARAM = 12


def epsilon_greedy_act_flops(n_actions):
    """Acting epsilon-greedily from a value row: an argmax over A values (A - 1 comparisons) and
    the epsilon coin plus the uniform draw (2)."""
    return n_actions + 1


def td_update_flops(n_actions, rule: str = "q_learning"):
    """One tabular update of Q[s, a] from one transition.

    * ``q_learning``: max over Q[s'] (A - 1), target r + gamma * max (2), delta (1), alpha * delta
      (1), add (1): A + 4;
    * ``sarsa``: Q[s', a'] is read, a' being the next action already chosen: 5;
    * ``expected_sarsa``: the expectation of Q[s'] under the policy (2A) + 4 (the policy's row
      itself comes from the next act's argmax);
    * ``bandit_mean``: the sample average of the pulled arm: count, delta, divide, add (4).
    """
    if rule == "q_learning":
        return n_actions + 4
    if rule == "sarsa":
        return 5
    if rule == "expected_sarsa":
        return 2 * n_actions + 4
    if rule == "bandit_mean":
        return 4
    raise ValueError(f"unknown TD rule {rule!r}; one of {TD_RULES}")


def tabular_teacher_flops_per_step(n_actions, rule: str = "q_learning"):
    """A tabular teacher's own work per environment step: one epsilon-greedy action and one update.
    It touches two rows of its table (s and s', A entries each) and writes one entry, whatever |S|:
    the cost per step is O(A), independent of the number of states."""
    return epsilon_greedy_act_flops(n_actions) + td_update_flops(n_actions, rule)


def dqn_flops_per_step(layers, batch_size=32, train_every=4, optimizer_flops_per_param=ADAM_FLOPS_PER_PARAM):
    """DQN's work per environment step (after the warm-up), by component, from its layer shapes.

    * ``acting``: one forward pass of the online network on the current stack (every step);
    * ``update``: per gradient update, the online network's forward and backward on the batch and
      the target network's forward on the batch's next stacks (CleanRL's loop, Mnih et al. 2015);
    * ``optimizer``: the Adam step, elementwise per parameter (not counted by torch's flop counter);
    * ``per_step`` = acting + (update + optimizer) / train_every.
    """
    fwd = forward_flops(layers)
    update = batch_size * (fwd + backward_flops(layers)) + batch_size * fwd
    opt = optimizer_flops_per_param * n_params(layers)
    return {"acting": fwd, "update": update, "optimizer": opt, "params": n_params(layers),
            "per_step": fwd + (update + opt) / train_every,
            "per_step_matmul": fwd + update / train_every}


def dqn_atari_flops_per_step(n_actions=4, frames=4, size=84, batch_size=32, train_every=4):
    """``dqn_flops_per_step`` for the Nature CNN on Atari stacks (``frames`` x 84 x 84)."""
    return dqn_flops_per_step(nature_cnn_layers(n_actions, frames, size), batch_size, train_every)


# ---------------------------------------------------------------------------------------------
# The mixture
# ---------------------------------------------------------------------------------------------
#: Hypothesis-steps per second of the batched interpreter on Dark Room 9x9 (A = 5), 139k
#: programs, 2 threads: medians of 5 runs over several invocations, 1.17-1.25e8
#: (``python -m experiments.benchmarks mixture``).
MIXTURE_HYPOTHESIS_STEPS_PER_S = 1.2e8


def mixture_flops_per_hypothesis_step(n_actions, rule: str = "q_learning", owns_table: bool = True):
    """Work of one program (hypothesis) for one predicted action of the teacher.

    * its action distribution at the observation: epsilon-greedy from its value row (A + 1) and
      the distribution written out (A);
    * its share of the mixture's prediction, w * p over A actions (2A);
    * its posterior update by the probability of the teacher's action (2: log-likelihood add,
      normaliser share);
    * its table update from the transition (``td_update_flops``) -- only for a program that owns a
      table; programs sharing learning dynamics share one table, updated once.
    A program touches two rows of its table per step (2A entries read, 1 written), never the
    whole table: the per-step work is O(A), independent of |S|.
    """
    own = td_update_flops(n_actions, rule) if owns_table else 0
    return (n_actions + 1) + n_actions + 2 * n_actions + 2 + own


def mixture_flops_per_action(n_programs, n_actions, n_tables=None, rule: str = "q_learning"):
    """The mixture's work per predicted action: programs x per-program work, with the table work
    paid once per distinct table (``n_tables``, default: every program owns its own)."""
    per = mixture_flops_per_hypothesis_step(n_actions, rule, owns_table=False)
    tables = n_programs if n_tables is None else n_tables
    return n_programs * per + tables * td_update_flops(n_actions, rule)


def mixture_seconds_per_action(n_programs, hypothesis_steps_per_s=MIXTURE_HYPOTHESIS_STEPS_PER_S):
    """Wall time per predicted action at the measured interpreter speed."""
    return n_programs / hypothesis_steps_per_s


def mixture_implied_flops_per_s(n_actions, hypothesis_steps_per_s=MIXTURE_HYPOTHESIS_STEPS_PER_S,
                                rule: str = "q_learning"):
    """The arithmetic rate the measured hypothesis-steps/s stands for (each program owning its
    table). At A = 5 and 1.2e8 hypothesis-steps/s: 32 x 1.2e8 ~ 3.8e9 FLOP/s -- a small fraction
    of the machine's dense matmul rate, because the work is gathers and scatters into tables
    (memory-bound), not dense arithmetic."""
    return mixture_flops_per_hypothesis_step(n_actions, rule) * hypothesis_steps_per_s


# ---------------------------------------------------------------------------------------------
# The AD transformer
# ---------------------------------------------------------------------------------------------
ATTENTION_COUNTS = ("kaplan", "dense")


def transformer_forward_flops_per_token(n_params_nonembedding, n_layer, n_ctx, d_model, attention: str = "kaplan"):
    """Forward FLOPs per token (Kaplan et al. 2020, Table 1): ``2 N + 2 n_layer n_ctx d_model``,
    N the non-embedding parameters. Kaplan's attention term counts the QK logits over the context;
    a causal window of n_ctx tokens attends on average over n_ctx / 2 keys, so it also equals the
    logits *and* the value weighting averaged over a causal window. ``attention="dense"`` counts
    what a dense kernel executes on a full window (both products over all n_ctx keys, masked
    entries included): ``2 N + 4 n_layer n_ctx d_model``."""
    if attention == "kaplan":
        return 2 * n_params_nonembedding + 2 * n_layer * n_ctx * d_model
    if attention == "dense":
        return 2 * n_params_nonembedding + 4 * n_layer * n_ctx * d_model
    raise ValueError(f"attention count {attention!r} is not one of {ATTENTION_COUNTS}")


def transformer_train_flops_per_token(n_params_nonembedding, n_layer, n_ctx, d_model, attention: str = "kaplan"):
    """Training FLOPs per token: forward + backward = 3 x forward, i.e. ``6 N + 6 n_layer n_ctx d``
    (Kaplan's C = 6N plus the attention term; the same number as ``ADTransformer.flops_per_token``)."""
    return 3 * transformer_forward_flops_per_token(n_params_nonembedding, n_layer, n_ctx, d_model, attention)


def ad_encoder_layers(obs_encoder: str, d_model, obs_dim=0, frame_stack=4, frame_size=84) -> list[dict[str, Any]]:
    """Dense/conv layers of the AD transformer's observation encoder (embedding lookups cost no
    FLOPs and hold only embedding parameters: ``table`` and ``grid`` give an empty list)."""
    if obs_encoder in ("table", "grid"):
        return []
    if obs_encoder == "vector":
        return [{"kind": "linear", "d_in": obs_dim, "d_out": d_model, "flops": linear_flops(obs_dim, d_model),
                 "params": obs_dim * d_model + d_model, "input_grad_flops": linear_flops(obs_dim, d_model)}]
    if obs_encoder == "pixels":
        trunk = nature_cnn_layers(0, frame_stack, frame_size, head=False)
        flat = trunk[-1]["c_out"] * trunk[-1]["out_side"] ** 2
        return trunk + [{"kind": "linear", "d_in": flat, "d_out": d_model, "flops": linear_flops(flat, d_model),
                         "params": flat * d_model + d_model, "input_grad_flops": linear_flops(flat, d_model)}]
    raise ValueError(f"unknown obs encoder {obs_encoder!r}")


def ad_transformer_params(n_layer, d_model, n_actions, obs_encoder: str = "table", obs_dim=0, frame_stack=4,
                          frame_size=84, bias: bool = True):
    """Non-embedding parameters of ``ADTransformer`` from its shapes: per block qkv (3d^2), output
    projection (d^2), MLP (8d^2), two LayerNorms; plus the reward projection, the first-step
    vector, the final LayerNorm, the action head and the encoder's dense/conv layers."""
    d = d_model
    if bias:
        block = 12 * d * d + 13 * d  # weights + qkv/proj/fc/fc-proj biases (9d) + 2 LayerNorms (4d)
        ln_f = 2 * d
    else:
        block = 12 * d * d + 2 * d
        ln_f = d
    extra = 2 * d + d + ln_f + d * n_actions  # reward Linear(1, d), first-step vector, ln_f, head
    return n_layer * block + extra + n_params(ad_encoder_layers(obs_encoder, d, obs_dim, frame_stack, frame_size))


def ad_forward_flops_per_token(n_layer, d_model, n_ctx, n_actions, obs_encoder: str = "table", obs_dim=0,
                               frame_stack=4, frame_size=84, attention: str = "kaplan"):
    """Forward FLOPs per token of ``ADTransformer``: Kaplan's count on the transformer's dense
    weights plus the encoder's own forward (a convolution reuses each weight at every output
    pixel, so for the pixel encoder 2 x params would undercount it ~20-fold)."""
    enc = ad_encoder_layers(obs_encoder, d_model, obs_dim, frame_stack, frame_size)
    n_trunk = ad_transformer_params(n_layer, d_model, n_actions, "table")  # everything but the encoder
    return transformer_forward_flops_per_token(n_trunk, n_layer, n_ctx, d_model, attention) + forward_flops(enc)


def ad_train_flops_per_token(n_layer, d_model, n_ctx, n_actions, obs_encoder: str = "table", obs_dim=0,
                             frame_stack=4, frame_size=84, attention: str = "kaplan"):
    """Training FLOPs per token of ``ADTransformer``: 3 x forward for the transformer (Kaplan's 6N
    + attention), and for the encoder forward + backward without the gradient w.r.t. the raw
    observation (``backward_flops``)."""
    enc = ad_encoder_layers(obs_encoder, d_model, obs_dim, frame_stack, frame_size)
    n_trunk = ad_transformer_params(n_layer, d_model, n_actions, "table")
    enc_train = forward_flops(enc) + backward_flops(enc) if enc else 0
    return transformer_train_flops_per_token(n_trunk, n_layer, n_ctx, d_model, attention) + enc_train


# ---------------------------------------------------------------------------------------------
# Simulating the teacher's learning inside a forward pass
# ---------------------------------------------------------------------------------------------


def linear_attention_flops_per_token(depth, width, n_ctx, matrices_per_layer=4):
    """Forward FLOPs per token of a stack of ``depth`` (linear) self-attention layers of ``width``
    over ``n_ctx`` context tokens, by Kaplan's count: ``2 N + 2 depth n_ctx width`` with
    N = ``matrices_per_layer`` x width^2 per layer (keys, queries, values, output)."""
    return transformer_forward_flops_per_token(matrices_per_layer * depth * width * width, depth, n_ctx, width)


def td_transformer(n_td_steps, feature_dim, n_ctx) -> dict[str, Any]:
    """Wang, Blaser, Daneshmand & Zhang, "Transformers Can Learn Temporal Difference Methods for
    In-Context Reinforcement Learning" (ICLR 2025): an L-layer linear transformer whose context
    tokens are ``[phi(s); gamma phi(s'); r]`` implements L steps of batch TD(0) over the context
    (one layer = one TD step using every context transition). Width = 2 d + 1 for features of
    dimension d; depth = number of TD steps to run."""
    width = 2 * feature_dim + 1
    return {"construction": "Wang et al. ICLR 2025 (L layers = L steps of batch TD(0))", "depth": n_td_steps,
            "width": width, "n_ctx": n_ctx,
            "flops_per_token": linear_attention_flops_per_token(n_td_steps, width, n_ctx)}


def gd_transformer(n_gd_steps, input_dim, n_ctx) -> dict[str, Any]:
    """von Oswald, Niklasson, Randazzo, Sacramento, Mordvintsev, Zhmoginov & Vladymyrov,
    "Transformers Learn In-Context by Gradient Descent" (ICML 2023): one linear self-attention
    layer over tokens ``[x; y]`` performs one gradient step of least squares on the context.
    Width = d + 1; depth = number of gradient steps (a bandit's arm means are least squares on
    one-hot arm features)."""
    width = input_dim + 1
    return {"construction": "von Oswald et al. ICML 2023 (1 layer = 1 GD step of least squares)",
            "depth": n_gd_steps, "width": width, "n_ctx": n_ctx,
            "flops_per_token": linear_attention_flops_per_token(n_gd_steps, width, n_ctx)}


def planning_depth(horizon):
    """Depth needed to propagate value over a horizon of H steps: Lin, Bai & Mei, "Transformers as
    Decision Makers: Provable In-Context Reinforcement Learning via Supervised Pretraining" (ICLR
    2024) approximate UCB-VI with depth O(H) (backward induction, one step of it per O(1) layers);
    a batch TD step per layer (Wang et al.) moves value back by one transition, so no stack of
    such layers reaches a converged value with fewer than H of them. The constant is taken as 1:
    the lower estimate."""
    return horizon


def simulation_cost(rung: dict[str, Any]) -> dict[str, Any]:
    """Forward-pass FLOPs per step to simulate a rung's teacher learning, against its own cost.

    ``rung`` keys: ``name``; ``n_states``, ``n_actions``; ``horizon`` (episode length or
    effective horizon 1/(1-gamma), whichever is shorter); ``teacher_updates`` (sequential updates
    the teacher makes while it learns); ``n_ctx`` (transitions the forward pass must read:
    the history it learns from); ``feature_dim`` (and optional ``feature_dim_low``) for the TD
    construction; ``teacher_flops_per_step``; optional ``teacher_params``, ``construction``
    (``"td"`` or ``"gd"``), ``encoder_flops`` (per-token observation encoding every simulation
    pays, e.g. the CNN on a frame) and ``imitator`` (the AD transformer's shape: ``n_layer``,
    ``d_model``, ``n_ctx``, ``obs_encoder``), which adds its forward FLOPs per step and the OOMs
    the constructions need beyond it (``ooms_vs_imitator_low/high``).

    Two estimates, both from the constructions:

    * **high** -- reproduce the teacher's own trajectory of updates: one layer per sequential
      update (depth = ``teacher_updates``), width from ``feature_dim``;
    * **low** -- reach what the teacher reaches by batch updates over the whole context: depth =
      ``planning_depth(horizon)``, width from ``feature_dim_low`` (default ``feature_dim``).

    ``ooms_low`` / ``ooms_high`` = log10 of simulation / teacher FLOPs per step.

    Readings to keep in mind. Per step is per new token with the context's keys and values cached
    (Kaplan's per-token count). Batch TD over the *whole* context at every step would also
    recompute every context token's layer states when a new transition arrives: that multiplies
    the high estimate by ``n_ctx`` (``ooms_high_recompute``). For the bandit's low estimate the
    single layer is a softmax head averaging the rewards of the tokens with the queried arm (the
    sample mean, exactly); a *linear* layer with a fixed step size (von Oswald) would need about
    n / min_a n_a gradient steps to reach those means instead of one.
    """
    gd = rung.get("construction", "td") == "gd"
    make = gd_transformer if gd else td_transformer
    n_ctx = rung["n_ctx"]
    enc = rung.get("encoder_flops", 0)
    high = make(rung["teacher_updates"], rung["feature_dim"], n_ctx)
    low = make(planning_depth(rung["horizon"]), rung.get("feature_dim_low", rung["feature_dim"]), n_ctx)
    teacher = rung["teacher_flops_per_step"]
    hi_f, lo_f = high["flops_per_token"] + enc, low["flops_per_token"] + enc
    out = {"name": rung["name"], "teacher_flops_per_step": float(teacher),
           "sim_flops_per_step_low": float(lo_f), "sim_flops_per_step_high": float(hi_f),
           "depth_low": low["depth"], "depth_high": high["depth"], "width_low": low["width"],
           "width_high": high["width"], "n_ctx": n_ctx,
           "ooms_low": math.log10(lo_f / teacher), "ooms_high": math.log10(hi_f / teacher),
           "ooms_high_recompute": math.log10(hi_f * n_ctx / teacher),
           "construction": high["construction"]}
    im = rung.get("imitator")
    if im is not None:
        f = ad_forward_flops_per_token(im["n_layer"], im["d_model"], im["n_ctx"], rung["n_actions"],
                                       im.get("obs_encoder", "table"))
        out.update({"imitator_flops_per_step": float(f), "ooms_vs_imitator_low": math.log10(lo_f / f),
                    "ooms_vs_imitator_high": math.log10(hi_f / f)})
    return out


#: The "3-5 OOMs more compute" question, as a band on the OOM axis.
OOM_QUESTION = (3.0, 5.0)


def _darkroom_rung(size, episodes_to_learn, episode_len=20, gamma=0.9):
    S, A = size * size, 5
    steps = episodes_to_learn * episode_len
    return {"name": f"Dark Room {size}x{size} (Q-learning)", "n_states": S, "n_actions": A,
            "horizon": min(episode_len, round(1 / (1 - gamma))), "teacher_updates": steps, "n_ctx": steps,
            "feature_dim": S * A, "teacher_params": S * A,
            "teacher_flops_per_step": tabular_teacher_flops_per_step(A, "q_learning"),
            "imitator": {"n_layer": 4, "d_model": 64, "n_ctx": 200, "obs_encoder": "grid"}}


def _atari_rung(total_steps=1_000_000, n_actions=4, learning_starts=80_000, train_every=4, gamma=0.99):
    layers = nature_cnn_layers(n_actions)
    cost = dqn_flops_per_step(layers, 32, train_every)
    return {"name": f"DQN on Atari ({total_steps:.0e} steps, Nature CNN)", "n_states": None, "n_actions": n_actions,
            "horizon": round(1 / (1 - gamma)), "teacher_updates": (total_steps - learning_starts) // train_every,
            "n_ctx": total_steps,
            # high: DQN linearised around its weights (its tangent features, one per parameter);
            # low: linear TD on its 512 penultimate features, the learned representation given free.
            "feature_dim": n_params(layers), "feature_dim_low": 512, "teacher_params": n_params(layers),
            "encoder_flops": forward_flops(layers[:-1]),  # the conv trunk and fc 512: the features
            "teacher_flops_per_step": cost["per_step"]}


def default_rungs() -> list[dict[str, Any]]:
    """The ladder, each size with where it comes from.

    * 5-armed bandit, 100 pulls (the histories the AD bandit rung trains on): sample-average
      epsilon-greedy teacher; least squares on one-hot arms (von Oswald), d = A;
    * Dark Room 5x5 and 9x9, Q-learning (eps 0.1, alpha 0.25, gamma 0.9), 20-step episodes; the
      learning part of a 9x9 history is its first ~25 (median goal) to ~220 (worst goal)
      episodes, measured on this machine -- 200 episodes taken; 5x5 by the same rule, 50
      episodes; features one-hot (s, a), d = |S||A|;
    * DQN on Atari, 10^6 steps (the ``paper`` preset: warm-up 80k, an update every 4 steps,
      batch 32), Breakout's 4 actions, gamma 0.99 (effective horizon 100).

    ``imitator`` is the AD transformer's ``default`` preset shape for the env family (4 layers,
    d 64; context 100 on the bandit, 200 on Dark Room); Atari has no AD preset, so none.
    """
    A = 5
    bandit = {"name": "bandit, 5 arms (eps-greedy)", "n_states": 1, "n_actions": A, "horizon": 1,
              "teacher_updates": 100, "n_ctx": 100, "feature_dim": A, "teacher_params": 2 * A,
              "construction": "gd", "teacher_flops_per_step": tabular_teacher_flops_per_step(A, "bandit_mean"),
              "imitator": {"n_layer": 4, "d_model": 64, "n_ctx": 100, "obs_encoder": "table"}}
    return [bandit, _darkroom_rung(5, 50), _darkroom_rung(9, 200), _atari_rung()]


def oom_table(rungs: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Rows for the "how many OOMs" figure: per rung the teacher's FLOPs per step, the simulation's
    (low and high), the ratio in OOMs, and where it sits against the 3-5-OOM question
    (``question_band``, ``verdict``: "below", "overlaps" or "beyond" the band) -- and, where the
    rung names an imitator, the same against the imitator's forward pass (``verdict_vs_imitator``):
    "3-5 OOMs more compute" read as more than the AD transformer spends per step today."""
    rows = []
    for r in default_rungs() if rungs is None else rungs:
        row = simulation_cost(r)
        row.update({"question_band": OOM_QUESTION, "verdict": _verdict(row["ooms_low"], row["ooms_high"]),
                    "teacher_params": r.get("teacher_params")})
        if "imitator_flops_per_step" in row:
            row["verdict_vs_imitator"] = _verdict(row["ooms_vs_imitator_low"], row["ooms_vs_imitator_high"])
        rows.append(row)
    return rows


def format_oom_table(rows: list[dict[str, Any]]) -> str:
    """The OOM table as fixed-width text (one line per rung) for notes and logs."""
    head = (f"{'rung':<40} {'teacher':>9} {'sim low':>9} {'sim high':>9} {'OOM low':>7} {'OOM high':>8} "
            f"{'recomp':>6} {'verdict':>8} | {'AD fwd':>8} {'OOM low':>7} {'OOM high':>8} {'verdict':>8}")
    lines = [head]
    for r in rows:
        line = (f"{r['name']:<40} {r['teacher_flops_per_step']:>9.3g} {r['sim_flops_per_step_low']:>9.3g} "
                f"{r['sim_flops_per_step_high']:>9.3g} {r['ooms_low']:>7.2f} {r['ooms_high']:>8.2f} "
                f"{r['ooms_high_recompute']:>6.1f} {r['verdict']:>8} |")
        if "imitator_flops_per_step" in r:
            line += (f" {r['imitator_flops_per_step']:>8.3g} {r['ooms_vs_imitator_low']:>7.2f} "
                     f"{r['ooms_vs_imitator_high']:>8.2f} {r['verdict_vs_imitator']:>8}")
        else:
            line += f" {'-':>8} {'-':>7} {'-':>8} {'-':>8}"
        lines.append(line)
    return "\n".join(lines)


def _verdict(ooms_low, ooms_high) -> str:
    lo_q, hi_q = OOM_QUESTION
    if ooms_high < lo_q:
        return "below"
    if ooms_low > hi_q:
        return "beyond"
    return "overlaps"


# ---------------------------------------------------------------------------------------------
# Symbolic forms
# ---------------------------------------------------------------------------------------------


def expressions() -> dict[str, sp.Expr]:
    """The formulas above as sympy expressions in named size symbols (A actions, S states, B
    batch, k train_every, N params, L layers, T context, d width, n updates, H horizon, P programs,
    F features)."""
    A, S, B, k, N, L, T, d, n, H, P, F = sp.symbols("A S B k N L T d n H P F", positive=True, integer=True)
    dqn = dqn_flops_per_step(nature_cnn_layers(A), B, k)
    return {
        "tabular_q_learning_per_step": tabular_teacher_flops_per_step(A, "q_learning"),
        "tabular_sarsa_per_step": tabular_teacher_flops_per_step(A, "sarsa"),
        "dqn_atari_per_step": sp.simplify(dqn["per_step"]),
        "dqn_atari_per_step_matmul": sp.simplify(dqn["per_step_matmul"]),
        "mixture_per_action": mixture_flops_per_action(P, A),
        "transformer_forward_per_token": transformer_forward_flops_per_token(N, L, T, d),
        "transformer_train_per_token": sp.expand(transformer_train_flops_per_token(N, L, T, d)),
        "td_simulation_per_token": sp.expand(td_transformer(n, F, T)["flops_per_token"]),
        "gd_simulation_per_token": sp.expand(gd_transformer(n, F, T)["flops_per_token"]),
        "td_planning_simulation_per_token": sp.expand(td_transformer(planning_depth(H), F, T)["flops_per_token"]),
    }


__all__ = [
    "conv_out", "conv2d_flops", "linear_flops", "nature_cnn_layers", "mlp_layers", "forward_flops", "n_params",
    "backward_flops", "TD_RULES", "ADAM_FLOPS_PER_PARAM", "epsilon_greedy_act_flops", "td_update_flops",
    "tabular_teacher_flops_per_step", "dqn_flops_per_step", "dqn_atari_flops_per_step",
    "MIXTURE_HYPOTHESIS_STEPS_PER_S", "mixture_flops_per_hypothesis_step", "mixture_flops_per_action",
    "mixture_seconds_per_action", "mixture_implied_flops_per_s", "ATTENTION_COUNTS",
    "transformer_forward_flops_per_token", "transformer_train_flops_per_token", "ad_encoder_layers",
    "ad_transformer_params", "ad_forward_flops_per_token", "ad_train_flops_per_token",
    "linear_attention_flops_per_token", "td_transformer", "gd_transformer", "planning_depth", "simulation_cost",
    "OOM_QUESTION", "default_rungs", "oom_table", "format_oom_table", "expressions",
]
