"""Identification: does the mixture find the teacher's program from the teacher's learning history?

For each program family (Q-learning, SARSA, expected SARSA on Dark Room / Chain; UCB1, Thompson
and epsilon-greedy on a Bernoulli bandit) and each draw, a teacher program is drawn from the
grammar's prior (conditioned on the family, on fitting the mixture's budget and on the allowed
action rules), the registered teacher with exactly those parameters learns for --episodes, and
the mixture is conditioned on its history. Reported per run: the posterior mass of the
teacher's equivalence class (programs equal to it on the probe histories) along the history, the
first step it exceeds 0.9 and the step from which it stays above 0.9; the same for the programs
this particular history cannot tell from the teacher (equal action distributions at every step
so far -- when the data never separates two programs, Bayes keeps their prior ratio); the mean
KL(teacher || mixture) over the last 500 steps (bits); the most probable programs; and the bound
slacks (the per-sequence bound is asserted on every run).

    python -m experiments.mixture_identify --env darkroom --size 5 --budget 17 --draws 3 \\
        --episodes 1500 --out runs/identify_darkroom.json
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import gymnasium as gym
import numpy as np
from tqdm import tqdm

from envs.tasks import task_split
from experiments.cli import check_new_output, fail, write_json_atomic
from experiments.protocol import score_predictions
from learners.provenance import run_info
from learners.recorder import record
from learners.teachers.base import make_teacher
from theory import bounds as TB

ENVS = {"darkroom": "hypospace/DarkRoom-v0", "chain": "hypospace/Chain-v0", "bandit": "hypospace/Bandit-v0"}
DEFAULT_FAMILIES = {"darkroom": ("QLearning", "SARSA", "ExpectedSARSA"), "chain": ("QLearning", "SARSA", "ExpectedSARSA"),
                    "bandit": ("UCB1", "Thompson", "BanditEpsGreedy")}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m experiments.mixture_identify", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", choices=sorted(ENVS), required=True, help="environment family")
    p.add_argument("--size", type=int, default=5, help="Dark Room side / Chain length / bandit arms (default 5)")
    p.add_argument("--budget", type=float, default=17.0, help="description-length budget of the mixture, bits (default 17)")
    p.add_argument("--max-kt", type=float, default=None, help="Levin budget bits + log2(steps per prediction) (default: none)")
    p.add_argument("--families", nargs="+", default=None, help="program families (default: the env's three)")
    p.add_argument("--draws", type=int, default=3, help="teachers drawn per family (default 3)")
    p.add_argument("--draw-seed", type=int, default=0, help="seed of the draws (default 0)")
    p.add_argument("--episodes", type=int, default=1500, help="teacher episodes (bandit: pulls) (default 1500)")
    p.add_argument("--explore-kinds", nargs="+", default=None,
                   help="action rules a drawn TD teacher may use (default: eps_greedy softmax count_bonus; bandit: greedy eps_greedy)")
    p.add_argument("--draw", choices=("prior", "uniform"), default="prior",
                   help="draw teachers from the prior 2^-bits (default) or uniformly among the family's programs in budget")
    p.add_argument("--out", required=True, help="results JSON (written atomically; must not exist)")
    p.add_argument("--threads", type=int, default=1,
                   help="worker threads of the mixture's compiled interpreter (default 1; other counts sum in "
                        "another order: results agree to 1e-12, not bit for bit)")
    p.add_argument("--progress", action="store_true", help="progress bars")
    return p


def _env_kwargs(env: str, size: int, k: int) -> dict[str, Any]:
    if env == "darkroom":
        return task_split(ENVS[env], size=size, seed=0).train[k % 10]
    if env == "chain":
        return {"n": size}
    return task_split(ENVS[env], n_arms=size, seed=0).train[k]


def run(args: argparse.Namespace) -> dict[str, Any]:
    # On use: the mixture's package loads numba, +0.45 s on --help (0.7 -> 1.15 s measured here)
    # for a script whose runs take minutes.
    from learners.solomonoff.checks import assert_bound
    from learners.solomonoff.draw import draw_program, teacher_for
    from learners.solomonoff.grammar import program_source
    from learners.solomonoff.mixture import Mixture

    env_id = ENVS[args.env]
    fams = args.families or DEFAULT_FAMILIES[args.env]
    kinds = tuple(args.explore_kinds or (("greedy", "eps_greedy") if args.env == "bandit" else ("eps_greedy", "softmax", "count_bonus")))
    t0 = time.perf_counter()
    base = Mixture.for_env(env_id, args.budget, threads=args.threads, env_kwargs=_env_kwargs(args.env, args.size, 0), max_kt=args.max_kt,
                           progress=args.progress)
    build_s = time.perf_counter() - t0
    rows = []
    runs = [(f, d) for f in fams for d in range(args.draws)]
    bar = None
    if args.progress:
        bar = tqdm(total=len(runs), desc="identify", unit="run")
    for fam, d in runs:
        rng = np.random.default_rng([args.draw_seed, d, sum(map(ord, fam))])
        for _ in range(1000):  # the prior conditioned on being in the mixture's space (e.g. its Kt budget)
            prog = draw_program(base.grammar, fam, rng, max_bits=args.budget, explore_kinds=kinds, how=args.draw)
            if base.class_info(prog)["hypotheses"]:
                break
        else:
            raise ValueError(f"no {fam} program drawn lies in the mixture's space (budget {args.budget}, Kt {args.max_kt})")
        name, opts = teacher_for(prog, bandit=base.grammar.bandit)
        kw = _env_kwargs(args.env, args.size, d)
        env = gym.make(env_id, **kw)
        teacher = make_teacher(name, env.observation_space, env.action_space, seed=1000 + d, **opts)
        hist = record(teacher, env_id, env_kwargs=kw, episodes=args.episodes, seed=2000 + d)
        mix = base.clone()
        t1 = time.perf_counter()
        probs = mix.predict_history(hist, watch=[prog], watch_equivalent=True)
        secs = time.perf_counter() - t1
        score = score_predictions(probs, hist)
        trace = mix.watch_trace[:, 0]
        eq = mix.watch_equivalent_trace
        eq_above = eq > 0.9
        eq_below = np.flatnonzero(~eq_above)
        above = trace > 0.9
        first = int(np.argmax(above)) + 1 if above.any() else None
        below = np.flatnonzero(~above)
        stay = (int(below[-1]) + 2 if below.size else 1) if above[-1] else None
        bound = assert_bound(mix, hist, teacher=prog, programs=[prog])
        T = len(hist)
        marks = np.unique(np.linspace(0, T - 1, 41).astype(int))
        # the bounds of theory.bounds drawn over the measured curves (bits, cumulative)
        bits = base.grammar.bits(prog)
        cum_mix = np.cumsum(mix.mix_log_loss)
        cum_teacher = np.cumsum(-np.log2(np.asarray(hist.teacher_probs, dtype=np.float64)[np.arange(T), hist.action]))
        n = np.arange(1, T + 1)
        bound_loss = TB.per_sequence_bound(cum_teacher, bits, mix.log2_normaliser, smoothed=False, smoothing_eps=mix.smoothing)
        cum_kl = np.cumsum(score.kl_bits)
        bound_kl = TB.expected_kl_bound(bits, mix.log2_normaliser, n, mix.smoothing)
        rows.append({
            "env": args.env, "env_kwargs": kw, "family": fam, "draw": d, "program": program_source(prog),
            "program_bits": base.grammar.bits(prog), "teacher": name, "teacher_options": opts, "steps": T,
            "class_mass_final": float(trace[-1]), "first_step_mass_above_0.9": first, "stays_above_0.9_from_step": stay,
            "history_equivalent_mass_final": float(eq[-1]),
            "history_equivalent_stays_above_0.9_from_step": (int(eq_below[-1]) + 2 if eq_below.size else 1) if eq_above[-1] else None,
            "trace_history_equivalent_mass": eq[np.unique(np.linspace(0, len(hist) - 1, 41).astype(int))].tolist(),
            "mean_kl_bits_last_500": float(score.kl_bits[-500:].mean()),
            "mean_kl_bits_first_500": float(score.kl_bits[:500].mean()),
            "argmax_agreement_last_500": float(score.agree[-500:].mean()),
            "mixture_log_loss_bits": float(np.sum(mix.mix_log_loss)),
            "teacher_log_loss_bits": float(-np.log2(np.asarray(hist.teacher_probs)[np.arange(T), hist.action]).sum()),
            "bound": bound, "top": mix.top(3), "seconds": secs,
            "trace_steps": (marks + 1).tolist(), "trace_class_mass": trace[marks].tolist(),
            "trace_mixture_log_loss_bits": cum_mix[marks].tolist(), "trace_teacher_log_loss_bits": cum_teacher[marks].tolist(),
            "trace_per_sequence_bound_bits": bound_loss[marks].tolist(),
            "trace_cumulative_kl_bits": cum_kl[marks].tolist(), "trace_expected_kl_bound_bits": bound_kl[marks].tolist(),
            "regret_bits_final": float(cum_mix[-1] - cum_teacher[-1]),
            "regret_bound_bits_final": float(bound_loss[-1] - cum_teacher[-1]),
        })
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(f"{fam} d{d}: mass {trace[-1]:.3f}")
    if bar is not None:
        bar.close()
    firsts = [r["stays_above_0.9_from_step"] for r in rows]
    ok = [f for f in firsts if f is not None]
    return {
        "rows": rows,
        "summary": {
            "runs": len(rows), "identified": len(ok),
            "median_steps_to_stay_above_0.9": float(np.median(ok)) if ok else None,
            "max_steps_to_stay_above_0.9": max(ok) if ok else None,
            "max_mean_kl_bits_last_500": max(r["mean_kl_bits_last_500"] for r in rows),
            "mixture": base.summary(), "build_seconds": build_s,
        },
    }


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.threads < 1:
        fail(p.prog, "--threads must be >= 1")
    if args.draws <= 0 or args.episodes <= 0 or args.size < 2:
        fail(p.prog, "--draws and --episodes must be positive and --size >= 2")
    if args.episodes < 30 and args.env != "bandit":
        fail(p.prog, "--episodes must be >= 30 for the KL over the last 500 steps to mean something")
    out = check_new_output(p.prog, args.out)
    try:
        res = run(args)
    except (ValueError, KeyError) as e:
        fail(p.prog, str(e).splitlines()[0])
    res["run_info"] = run_info(seed=args.draw_seed, config=vars(args))
    write_json_atomic(out, res)
    s = res["summary"]
    for r in res["rows"]:
        print(f"{r['program']:<95} {r['program_bits']:5.1f} bits  mass {r['class_mass_final']:.3f} "
              f"(>0.9 from {r['stays_above_0.9_from_step']})  indistinguishable-on-history mass "
              f"{r['history_equivalent_mass_final']:.3f} (>0.9 from {r['history_equivalent_stays_above_0.9_from_step']})  "
              f"KL500 {r['mean_kl_bits_last_500']:.1e}")
    print(f"identified {s['identified']}/{s['runs']}; median steps {s['median_steps_to_stay_above_0.9']}; "
          f"max KL last 500 {s['max_mean_kl_bits_last_500']:.2e} bits -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
