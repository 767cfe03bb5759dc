"""The Atari rung's questions for AD transformers trained by ``experiments.train_transformer --env atari``.

    python -m experiments.atari_eval encoders --train runs/atari/breakout-s0 --val runs/atari/breakout-s1 --minutes 6 --out enc.json
    python -m experiments.atari_eval q1 --run runs/ad-breakout --expert-run runs/ed-breakout --history runs/atari/breakout-s1 --out q1.json
    python -m experiments.atari_eval q2 --run runs/ad-breakout --history runs/atari/breakout-s1 --T 20000 --k 3 --out q2.json
    python -m experiments.atari_eval q3 --run runs/ad-breakout --game SpaceInvaders --steps 10000 \\
        --transplant-from runs/atari/breakout-s1 --out q3.json

* encoders — the encoder choice on validation data: the same small transformer trained for the
  same CPU time with the end-to-end Nature CNN and with the frozen autoencoder (its one-off
  training and embedding counted in its time), validation KL (bits) to the held-out DQN's exact
  eps-greedy probabilities, beside the uniform policy's.
* Q1 — now. Teacher-forced along a held-out DQN history, in windows of the model's context
  starting at episode starts drawn in each decile of learning (episodes): KL(teacher || model)
  in bits and greedy agreement (the model's argmax is a teacher argmax) per decile; "now" =
  the last decile. Intervals: percentile bootstrap over windows.
* Q2 — keep improving. Conditioned on the held-out history's last ``context`` steps before T,
  the model acts alone for (k-1) T steps (so to k T); beside the DQN continued from T (its own
  recorded steps T..kT) and the DQN frozen at its weight snapshot at T (with epsilon at T).
  ``continuation_ratio = (R_im(kT) - R_t(T)) / (R_t(kT) - R_t(T))`` with R the mean full-game
  return over the last ``--window`` episodes before T / kT / the end of the model's run (the
  study's definition). The 'beyond' variant is a model trained with ``--first-steps T``: pass it
  as --run with --variant beyond.
* Q3 — a game it never saw: Space Invaders from an empty context, and as a transplant (the
  last context steps of a Breakout history, then Space Invaders); beside a fresh DQN's first
  steps (learning as it acts, default preset) and uniform random. ``auc_ratio`` = mean return
  of the run's finished episodes / the fresh DQN's. A model whose encoder saw the game is
  refused unless --encoder-saw-game marks the run as that variant.

Controls in Q1 and Q2: uniform random, and expert distillation (--expert-run: a model trained
with ``--expert``, on each history's final episodes only). Results: one JSON file of tidy rows
(question, imitator, variant, metric, T, value, low, high, n) plus config, seed and commit.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from experiments.cli import UsageError, fail, parse_kv, write_json_atomic
from experiments.protocol import UniformRandom, score_predictions, teacher_from_history
from experiments.study.questions import Measured
from experiments.study.stats import interval
from learners.errors import CheckpointError, HistoryFitError
from learners.history import HistoryError, LearningHistory
from learners.protocols import Transition, sample_action
from learners.provenance import run_info
from learners.transformer.atari import open_history

PROG = "python -m experiments.atari_eval"


# ---------------------------------------------------------------------------------------------
# Histories
# ---------------------------------------------------------------------------------------------
# ---------------------------------------------------------------------------------------------
# Acting for a number of steps (Atari episodes have no fixed length)
# ---------------------------------------------------------------------------------------------
def act_for_steps(agent: Any, env_id: str, steps: int, seed: int, *, learn: bool = False, progress: bool = False,
                  env_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Let ``agent`` act alone for ``steps`` steps (its actions are interventions); returns the
    full-game returns of its finished episodes and the step at which each finished.
    ``learn``: the agent is a teacher that learns from its own steps (a fresh DQN)."""
    import envs

    e = envs.make(env_id, **(env_kwargs or {}))
    env_ss, act_ss = np.random.SeedSequence(int(seed)).spawn(2)
    rng = np.random.default_rng(act_ss)
    obs, _ = e.reset(seed=int(env_ss.generate_state(1)[0]))
    rets, ends, ret = [], [], 0.0
    bar = None
    if progress:
        from tqdm import tqdm  # the bar only

        bar = tqdm(total=steps, desc=f"act {env_id}", unit="step", mininterval=1.0)
    t0 = time.perf_counter()
    try:
        for t in range(int(steps)):
            p = np.asarray(agent.action_probs(obs), np.float64)
            a = sample_action(p, rng)
            nobs, r, term, trunc, _ = e.step(a)
            agent.observe(Transition(obs, a, float(r), nobs, bool(term), bool(trunc)), intervention=not learn)
            ret += float(r)
            if term or trunc:
                rets.append(ret)
                ends.append(t + 1)
                ret = 0.0
                nobs, _ = e.reset()
            obs = nobs
            if bar is not None:
                bar.update(1)
    finally:
        e.close()
        if bar is not None:
            bar.close()
    return {"returns": rets, "ends": ends, "steps_per_s": steps / max(1e-9, time.perf_counter() - t0)}


def frozen_dqn(h: LearningHistory, T: int, seed: int) -> Any:
    """The DQN as it was at step T (its latest snapshot at or before T), acting with epsilon at T,
    never learning."""
    snap = max(s for s in h.snapshot_steps if s <= T)
    teacher = teacher_from_history(h, snap, seed=seed)
    teacher.t = int(T)  # epsilon(T): the schedule reads the step counter

    class _Frozen:
        n_actions = teacher.n_actions

        def action_probs(self, obs: Any) -> np.ndarray:
            return teacher.action_probs(obs)

        def observe(self, transition: Transition, *, intervention: bool = True) -> None:
            pass

    return _Frozen()


def fresh_dqn(env_id: str, seed: int, env_kwargs: dict[str, Any] | None = None, **options: Any) -> Any:
    """A DQN from scratch (default preset) that learns from the steps it takes."""
    import envs
    from learners.teachers import make_teacher

    e = envs.make(env_id, **(env_kwargs or {}))
    try:
        return make_teacher("dqn", e.observation_space, e.action_space, seed=seed, **{"preset": "default", **options})
    finally:
        e.close()


# ---------------------------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------------------------
def _row(question: str, who: str, metric: str, values: Any, *, T: int | None = None, variant: str = "",
         extra: dict[str, Any] | None = None) -> dict[str, Any]:
    v = np.asarray(values, float).ravel()
    v = v[np.isfinite(v)]
    if len(v) == 0:
        point, lo, hi = float("nan"), float("nan"), float("nan")
    else:
        point, lo, hi = interval("mean", v[:, None], resamples=2000)  # windows / episodes as the resampled units
    return {"question": question, "imitator": who, "variant": variant, "metric": metric, "T": T, "value": point,
            "low": lo, "high": hi, "n": int(len(v)), "values": [float(x) for x in v], **(extra or {})}


def to_measured(rows: list[dict[str, Any]], who: str, variant: str = "") -> Measured:
    """The rows of one imitator (and variant) as the study's ``Measured`` (per-unit components,
    so the study's summary can bootstrap them): the hook an Atari rung of the study calls."""
    m = Measured()
    for r in rows:
        if r["imitator"] != who or r["variant"] != variant:
            continue
        name = r["metric"] + (f"_decile{r['decile']}" if "decile" in r else "")
        if r["metric"] == "continuation_ratio":
            m.ratio(name, r["T"], [r["num"]], [r["den"]])
        elif r.get("values"):
            m.mean(name, r["T"], r["values"])
    return m


def _mean_last(returns: list[float], w: int) -> float:
    return float(np.mean(returns[-w:])) if returns else float("nan")


# ---------------------------------------------------------------------------------------------
# The questions
# ---------------------------------------------------------------------------------------------
def q1(agents: dict[str, Any], h: LearningHistory, *, windows: int, context: int, seed: int) -> list[dict[str, Any]]:
    """Teacher-forced KL and greedy agreement by decile of learning (see the module docstring)."""
    from envs.atari import episode_starts

    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x01]))
    ep = np.asarray(h.episode)
    starts = episode_starts(h)
    dec_of_start = np.minimum((10 * ep[starts]) // max(1, int(ep[-1]) + 1), 9)
    rows = []
    per: dict[str, dict[str, list[list[float]]]] = {w: {"kl": [[] for _ in range(10)], "agree": [[] for _ in range(10)]} for w in agents}
    for d in range(10):
        cand = starts[(dec_of_start == d) & (starts + 2 <= len(h))]
        if len(cand) == 0:  # a decile inside one long episode: the window from that episode's start
            in_d = np.flatnonzero(np.minimum((10 * ep) // max(1, int(ep[-1]) + 1), 9) == d)
            if len(in_d) == 0:
                continue
            cand = starts[np.searchsorted(starts, in_d[0], side="right") - 1 :][:1]
        for s in rng.choice(cand, size=min(windows, len(cand)), replace=False):
            lo, hi = int(s), int(min(len(h), s + context))
            ref = None
            for who, ag in agents.items():
                if hasattr(ag, "token_history"):
                    th = ag.token_history(h, lo, hi)
                    ref = th
                    probs = ag.predict(h, lo, hi)
                else:
                    th = ref if ref is not None else next(a for a in agents.values() if hasattr(a, "token_history")).token_history(h, lo, hi)
                    probs = np.full((hi - lo, th.n_actions), 1.0 / th.n_actions)
                sc = score_predictions(probs, th)
                per[who]["kl"][d].append(float(sc.kl_bits.mean()))
                per[who]["agree"][d].append(float(sc.agree.mean()))
    for who in agents:
        for d in range(10):
            rows.append(_row("Q1", who, "kl_bits", per[who]["kl"][d], extra={"decile": d}))
            rows.append(_row("Q1", who, "agreement", per[who]["agree"][d], extra={"decile": d}))
        rows.append(_row("Q1", who, "kl_bits_late", per[who]["kl"][9]))
        rows.append(_row("Q1", who, "agreement_late", per[who]["agree"][9]))
    return rows


def q2(agents: dict[str, Any], h: LearningHistory, T: int, *, k: int, window: int, seed: int, variant: str,
       progress: bool = False) -> list[dict[str, Any]]:
    """Continuation from T to kT beside the DQN continued (recorded) and frozen at T."""
    from learners.transformer.atari import game_of

    env_id = f"ALE/{game_of(h.metadata.get('env_id', 'ALE/Breakout-v5'))}-v5"
    env_kwargs = dict(h.metadata.get("env_kwargs") or {})  # the env the DQN learned on
    kT = k * T
    if kT > len(h):
        raise UsageError(f"--T {T} x --k {k} = {kT} is past the history's {len(h)} steps (the DQN's continuation is recorded there)")
    rets = h.episode_returns()
    done = np.flatnonzero(np.asarray(h.terminated) | np.asarray(h.truncated))
    end_ep = np.asarray(h.episode)[done]
    R_T = _mean_last(list(rets[end_ep[done < T]]), window)
    R_kT = _mean_last(list(rets[end_ep[done < kT]]), window)
    rows = [_row("Q2", "teacher_continued", "return_kT", rets[end_ep[done < kT]][-window:], T=T, variant=variant),
            _row("Q2", "teacher_continued", "return_T", rets[end_ep[done < T]][-window:], T=T, variant=variant)]
    runs = dict(agents)
    runs["teacher_frozen"] = frozen_dqn(h, T, seed)
    for who, ag in runs.items():
        if hasattr(ag, "condition"):
            ag.condition(h, T)
        res = act_for_steps(ag, env_id, kT - T, seed, progress=progress, env_kwargs=env_kwargs)
        R_im = _mean_last(res["returns"], window)
        ratio = (R_im - R_T) / (R_kT - R_T) if R_kT != R_T else float("nan")
        rows.append(_row("Q2", who, "return_kT", res["returns"][-window:], T=T, variant=variant))
        rows.append({"question": "Q2", "imitator": who, "variant": variant, "metric": "continuation_ratio", "T": T,
                     "value": ratio, "low": float("nan"), "high": float("nan"), "n": len(res["returns"]),
                     "num": R_im - R_T, "den": R_kT - R_T, "teacher_gain": R_kT - R_T, "episodes": len(res["returns"])})
    return rows


def q3(agents: dict[str, Any], game: str, steps: int, *, seed: int, transplant_from: LearningHistory | None,
       encoder_saw_game: bool, progress: bool = False, env_kwargs: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """A game the model never saw, from an empty context and as a transplant."""
    from learners.transformer.atari import check_game_for

    env_id = f"ALE/{game}-v5"
    runs: dict[str, tuple[Any, bool]] = {}
    for who, ag in agents.items():
        if hasattr(ag, "info"):
            check_game_for(ag.info, game, encoder_saw_game=encoder_saw_game)
            ag.reset()
            runs[f"{who}:empty"] = (ag, False)
        else:
            runs[who] = (ag, False)
    runs["fresh_dqn"] = (fresh_dqn(env_id, seed, env_kwargs), True)
    out: dict[str, dict[str, Any]] = {}
    for name, (ag, learn) in runs.items():
        out[name] = act_for_steps(ag, env_id, steps, seed, learn=learn, progress=progress, env_kwargs=env_kwargs)
        if transplant_from is not None and name.endswith(":empty"):
            ag.condition(transplant_from, len(transplant_from))
            out[name.replace(":empty", ":transplant")] = act_for_steps(ag, env_id, steps, seed, progress=progress,
                                                                       env_kwargs=env_kwargs)
    base = np.mean(out["fresh_dqn"]["returns"]) if out["fresh_dqn"]["returns"] else float("nan")
    rows = []
    for name, res in out.items():
        who, _, variant = name.partition(":")
        rows.append(_row("Q3", who, "return", res["returns"], variant=variant or "", extra={"game": game, "steps": steps}))
        m = np.mean(res["returns"]) if res["returns"] else float("nan")
        rows.append({"question": "Q3", "imitator": who, "variant": variant, "metric": "auc_ratio", "T": None,
                     "value": float(m / base) if base else float("nan"), "low": float("nan"), "high": float("nan"),
                     "n": len(res["returns"]), "game": game, "steps_per_s": res["steps_per_s"]})
    return rows


# ---------------------------------------------------------------------------------------------
# The encoder choice
# ---------------------------------------------------------------------------------------------
def encoder_choice(train_path: str, val_path: str, *, train_steps: int | None, val_steps: int | None, minutes: float,
                   out_dir: Path, cache_dir: Path, context: int, seed: int, progress: bool) -> list[dict[str, Any]]:
    """Both encoders, the same transformer and CPU time; validation KL to the held-out DQN."""
    import torch

    from learners.transformer.atari import AtariHistory, embedding_parts, model_fields, stack_sampler, view_store
    from learners.transformer.frame_encoder import EncoderConfig, train_frame_encoder
    from learners.transformer.model import ModelConfig
    from learners.transformer.train import TrainConfig, evaluate_loss, train
    from learners.transformer.data import WindowSampler

    tr = AtariHistory.open(open_history(train_path, train_steps))
    va = AtariHistory.open(open_history(val_path, val_steps))
    base = {"context": context, "n_layer": 2, "n_head": 4, "d_model": 64, "dropout": 0.0, "attn_dropout": 0.0, "embd_dropout": 0.0}
    rows = []
    budget = 60.0 * minutes
    for arm in ("nature_cnn", "frozen_ae"):
        torch.manual_seed(seed)
        t0 = time.perf_counter()
        enc_cfg = EncoderConfig(emb_dim=64, steps=400, batch_size=32, seed=seed)
        if arm == "frozen_ae":
            enc = train_frame_encoder(stack_sampler([tr]), enc_cfg, out_dir / "encoder", games=tr.games, progress=progress)
            t_enc = time.perf_counter() - t0
            store = view_store([tr], embedding_parts([tr], enc, cache_dir, progress))
            val = view_store([va], embedding_parts([va], enc, cache_dir, progress))
            t_emb = time.perf_counter() - t0 - t_enc
        else:
            enc, t_enc, t_emb = None, 0.0, 0.0
            store, val = view_store([tr]), view_store([va])
        mcfg = ModelConfig(**{**base, **model_fields(arm, enc_cfg.emb_dim)})
        # Per-update time from 2 updates, then as many as fit in what is left of the budget.
        probe = TrainConfig(steps=2, batch_size=4, warmup_steps=0, eval_every=0, checkpoint_every=10**9, log_every=1, seed=seed)
        tp = time.perf_counter()
        train(mcfg, probe, store, out_dir / f"{arm}-probe", progress=False)
        per = (time.perf_counter() - tp) / 2
        left = budget - (time.perf_counter() - t0)
        n = max(2, int(left / per))
        tcfg = TrainConfig(steps=n, batch_size=4, lr=1e-3, min_lr=1e-4, warmup_steps=min(50, n // 5), eval_every=0,
                           checkpoint_every=10**9, log_every=max(1, n // 5), subsample=[1, 2], seed=seed)
        res = train(mcfg, tcfg, store, out_dir / arm, progress=progress)
        vs = WindowSampler(val, context=context, subsample=[1], seed=seed + 1, frame_stack=4 if arm == "nature_cnn" else 1)
        vcfg = TrainConfig(batch_size=8, eval_batches=8)
        v = evaluate_loss(res.model, vs, vcfg, "cpu")
        # The uniform policy on the same validation windows.
        ukl = []
        for i in range(vcfg.eval_batches):
            b = vs.batch(i, vcfg.batch_size)
            p = b.teacher_probs.double().numpy()
            kl = np.where(p > 0, p * (np.log(np.maximum(p, 1e-300)) - np.log(1 / 18)), 0).sum(-1) / np.log(2)
            ukl.append(kl[b.mask.numpy()])
        rows.append({"encoder": arm, "updates": n, "seconds": time.perf_counter() - t0, "encoder_train_s": t_enc,
                     "embed_s": t_emb, "s_per_update": per, "train_kl_bits_last": res.log[-1]["kl_bits"] if res.log else None,
                     "val_kl_bits": v, "uniform_val_kl_bits": float(np.concatenate(ukl).mean()),
                     "train_steps": len(tr), "val_steps": len(va)})
        print(json.dumps(rows[-1]), file=sys.stderr)
    return rows


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    doc = (__doc__ or "").strip()
    p = argparse.ArgumentParser(prog=PROG, description=doc.splitlines()[0], epilog=doc.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True, metavar="{encoders,q1,q2,q3}")

    def common(s: argparse.ArgumentParser, run: bool = True) -> None:
        if run:
            s.add_argument("--run", required=True, help="AD run directory (experiments.train_transformer --env atari)")
            s.add_argument("--expert-run", help="expert-distillation run directory (the control)")
        s.add_argument("--out", required=True, help="results JSON to write (must not exist)")
        s.add_argument("--seed", type=int, default=0, help="seed of envs, action draws and window choice (default: 0)")
        s.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
        s.add_argument("--no-progress", action="store_true", help="no progress bars")

    e = sub.add_parser("encoders", help="the encoder choice on validation data")
    e.add_argument("--train", required=True, help="training history (complete or .partial)")
    e.add_argument("--val", required=True, help="validation history of another seed (complete or .partial)")
    e.add_argument("--train-steps", type=int, help="use only the training history's first N steps")
    e.add_argument("--val-steps", type=int, help="use only the validation history's first N steps")
    e.add_argument("--minutes", type=float, default=5.0, help="CPU budget per encoder, wall-clock minutes (default: 5)")
    e.add_argument("--context", type=int, default=256, help="transformer context (default: 256)")
    e.add_argument("--cache-dir", help="embedding cache (default: next to --out)")
    common(e, run=False)
    a = sub.add_parser("q1", help="teacher-forced KL and agreement by decile")
    a.add_argument("--history", required=True, help="held-out DQN history")
    a.add_argument("--windows", type=int, default=8, help="context windows per decile (default: 8)")
    common(a)
    b = sub.add_parser("q2", help="continuation from T to kT")
    b.add_argument("--history", required=True, help="held-out DQN history (its steps to kT are the DQN's continuation)")
    b.add_argument("--T", type=int, nargs="+", required=True, help="truncation steps")
    b.add_argument("--k", type=int, default=3, help="act to k T (default: 3)")
    b.add_argument("--window", type=int, default=10, help="episodes averaged for R (default: 10)")
    b.add_argument("--variant", choices=("within", "beyond"), default="within", help="what --run was trained on (default: within)")
    common(b)
    c = sub.add_parser("q3", help="a game the model never saw")
    c.add_argument("--game", default="SpaceInvaders", help="game (default: SpaceInvaders)")
    c.add_argument("--steps", type=int, required=True, help="steps each agent acts")
    c.add_argument("--transplant-from", help="history whose last context steps condition the model first (Breakout)")
    c.add_argument("--encoder-saw-game", action="store_true", help="the flagged variant: the model's encoder saw the game")
    c.add_argument("--env-kwargs", nargs="*", metavar="KEY=VALUE", default=[], help="env kwargs, values as JSON (ablations, tests)")
    common(c)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.out)
    if out.exists():
        fail(PROG, f"--out {out} already exists")
    if args.threads < 1:
        fail(PROG, f"--threads must be >= 1, got {args.threads}")
    import torch

    torch.set_num_threads(args.threads)
    from learners.transformer.atari import AtariImitator

    progress = not args.no_progress
    try:
        if args.cmd == "encoders":
            work = out.with_name(out.stem + ".work")
            rows = encoder_choice(args.train, args.val, train_steps=args.train_steps, val_steps=args.val_steps,
                                  minutes=args.minutes, out_dir=work, cache_dir=Path(args.cache_dir or work / "cache"),
                                  context=args.context, seed=args.seed, progress=progress)
        else:
            agents: dict[str, Any] = {"transformer": AtariImitator.load(args.run, seed=args.seed)}
            if args.expert_run:
                agents["expert_distillation"] = AtariImitator.load(args.expert_run, seed=args.seed)
            agents["uniform"] = UniformRandom(18, seed=args.seed)
            C = agents["transformer"].inner.cfg.context
            if args.cmd == "q1":
                rows = q1(agents, open_history(args.history), windows=args.windows, context=C, seed=args.seed)
            elif args.cmd == "q2":
                h = open_history(args.history)
                rows = [r for T in args.T for r in q2(agents, h, T, k=args.k, window=args.window, seed=args.seed,
                                                      variant=args.variant, progress=progress)]
            else:
                src = open_history(args.transplant_from) if args.transplant_from else None
                rows = q3(agents, args.game, args.steps, seed=args.seed, transplant_from=src,
                          encoder_saw_game=args.encoder_saw_game, progress=progress, env_kwargs=parse_kv(args.env_kwargs))
    except (UsageError, HistoryError, HistoryFitError, CheckpointError) as e:
        fail(PROG, " ".join(str(e).split()))
    write_json_atomic(out, {"rows": rows, "run": run_info(seed=args.seed, config=vars(args))})
    for r in rows:  # one line per figure; the file holds the per-unit values too
        where = f" decile {r['decile']}" if "decile" in r else (f" T={r['T']}" if r.get("T") is not None else "")
        print(f"{r['question']} {r['imitator']}{':' + r['variant'] if r['variant'] else ''} {r['metric']}{where}: "
              f"{r['value']:.4g} [{r['low']:.4g}, {r['high']:.4g}] n={r['n']}")
    print(f"results written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
