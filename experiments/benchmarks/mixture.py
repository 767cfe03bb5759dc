"""Mixture speed: hypothesis-steps per second of the batched interpreter vs a loop over programs.

Both sides do the same work per program and step on the same Dark Room history (a Q-learning
teacher's): compute the program's action distribution at the observation, update its posterior
weight by the probability of the teacher's action, and advance its state (value table) with
the transition. The batched side is ``Mixture.predict_history`` over every enumerated program
(>= 10^5 at the default budget; ``--dedup`` off so that every enumerated program class is
evaluated); the loop side is ``semantics.ProgramAgent`` per program (one value table each), on
a random sample of the same programs for fewer steps. Figures are per hypothesis-step, so the
ratio is like for like. A hypothesis is one explicit class the interpreter evaluates (programs
merged symbolically, and with --dedup behaviourally, count once); ``program_steps_per_s``
counts every program (code word) of the grammar those classes stand for. For reference the
run also measures a regime where many programs share few value tables (500 Q-learning tables x
200 epsilon-greedy variants each, ``shared_table_regime``). ``--variants
act_first,truncation,ties,eps_schedule`` measures the wider grammar (``Grammar.variants``) at
the same budget. Wall-clock and
process CPU time are both reported (the machine is shared; CPU time is the steadier figure).

The batched side runs with ``--threads`` worker threads (default: the machine's cores, at most
2), after a warm-up off the clock (the compiled kernels load or compile on first use), and is
timed ``--repeats`` times on fresh copies of the mixture: the figure is the median run, and
every run's figure is printed (``hypothesis_steps_per_s_each_run``).
"""
from __future__ import annotations

import argparse
import math
import os
import time
from typing import Any

import numpy as np

from experiments.cli import UsageError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--env-id", default="hypospace/DarkRoom-v0", help="toy env with Discrete observations")
    p.add_argument("--size", type=int, default=9, help="Dark Room side length")
    p.add_argument("--budget", type=float, default=22.0, help="description-length budget in bits (22 -> ~1.5e5 programs on 9x9)")
    p.add_argument("--episodes", type=int, default=50, help="episodes of teacher history to predict (20 steps each)")
    p.add_argument("--loop-programs", type=int, default=300, help="programs in the per-program loop reference")
    p.add_argument("--loop-steps", type=int, default=300, help="steps of the per-program loop reference")
    p.add_argument("--dedup", action="store_true", help="merge equivalent programs first (fewer, slower to build)")
    p.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1),
                   help="worker threads of the batched interpreter (default: the machine's cores, at most 2)")
    p.add_argument("--shared-tables", type=int, default=500, help="tables in the shared-table regime measurement")
    p.add_argument("--shared-variants", type=int, default=200, help="epsilon-greedy variants per table in that regime")
    p.add_argument("--seed", type=int, default=0, help="teacher / sampling seed")
    p.add_argument("--repeats", type=int, default=5, help="timed runs of the batched pass (the figure is their median)")
    p.add_argument("--variants", default="", help="comma-separated grammar variants (act_first, truncation, ties, eps_schedule; default: none)")


def shared_regime(hist: Any, n_tables: int, n_variants: int, grammar: Any) -> dict[str, float]:
    """The shared-table regime: n_tables Q-learning tables (distinct step sizes and
    discounts) x n_variants epsilon-greedy action rules each, run with the same per-step work as
    ``Mixture`` (predictive mix, posterior update, table updates) on the same history."""
    from learners.solomonoff.interpreter import TDEngine
    from theory import codes as C

    rats = [float(v) for v, _ in C.unit_rationals(20)]
    alphas, gammas = rats[: max(1, int(np.ceil(np.sqrt(n_tables))))], rats[: max(1, int(np.ceil(np.sqrt(n_tables))))]
    pairs = [(a, g) for a in alphas for g in gammas][:n_tables]
    tables = {"init": np.zeros(len(pairs)), "alpha": np.array([a for a, _ in pairs]),
              "coef": np.tile([1.0, 0.0, 1.0, 0.0, 0.0], (len(pairs), 1)), "gamma": np.array([g for _, g in pairs]),
              "pi_kind": np.full(len(pairs), -1), "pi_param": np.zeros(len(pairs))}
    eps = np.array([0.0] + rats[: n_variants - 1])
    variants = {"table": np.repeat(np.arange(len(pairs)), eps.size), "kind": np.zeros(len(pairs) * eps.size, np.int64),
                "param": np.tile(eps, len(pairs))}
    eng = TDEngine(grammar, tables, variants, 2.0 ** -10)
    lw = np.zeros(eng.n)
    T = len(hist)
    obs, act, rew = np.asarray(hist.obs), np.asarray(hist.action), np.asarray(hist.reward)
    term, trunc = np.asarray(hist.terminated), np.asarray(hist.truncated)
    c0, w0 = time.process_time(), time.perf_counter()
    for t in range(T):
        s, a = int(obs[t]), int(act[t])
        eng.prepare(s)
        w = np.exp(lw - lw.max())
        pred = eng.mix(w) / w.sum()
        lw += eng.loglik(a)
        eng.advance(s, a, float(rew[t]), int(hist.next_obs(t)), bool(term[t]), bool(trunc[t]))
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    assert np.isfinite(pred).all()
    return {"hypothesis_steps_per_s": eng.n * T / wall, "hypothesis_steps_per_s_cpu": eng.n * T / cpu,
            "n_programs": eng.n, "n_value_tables": eng.n_tables}


def run(args: argparse.Namespace) -> dict[str, Any]:
    # imported here, not at the top: the benchmark runner's --help lists every benchmark and
    # should not pay for gymnasium, torch and the compiled kernels
    import gymnasium as gym

    import envs  # noqa: F401
    from learners.protocols import Transition
    from learners.recorder import record
    from learners.solomonoff.grammar import VARIANTS
    from learners.solomonoff.mixture import Mixture
    from learners.solomonoff.semantics import ProgramAgent
    from learners.teachers.base import make_teacher

    if min(args.budget, args.episodes, args.loop_programs, args.loop_steps, args.repeats, args.threads) <= 0:
        raise UsageError("budget, episodes, loop-programs, loop-steps, repeats and threads must be positive")
    variants = tuple(v.strip() for v in args.variants.split(",") if v.strip())
    if set(variants) - set(VARIANTS):
        raise UsageError(f"unknown variants {sorted(set(variants) - set(VARIANTS))} (variants: {', '.join(VARIANTS)})")
    kw = {"size": args.size, "goal": [1, args.size - 2]} if "DarkRoom" in args.env_id else {}
    env = gym.make(args.env_id, **kw)
    teacher = make_teacher("q_learning", env.observation_space, env.action_space, seed=args.seed)
    hist = record(teacher, args.env_id, env_kwargs=kw, episodes=args.episodes, seed=args.seed)
    T = len(hist)

    t0 = time.perf_counter()
    mix = Mixture.for_env(args.env_id, args.budget, env_kwargs=kw, dedup=args.dedup, threads=args.threads, variants=variants)
    build_s = time.perf_counter() - t0
    n_explicit = sum(g.engine.n for g in mix.groups if g.name != "family")
    n_tables = sum(g.engine.n_tables for g in mix.groups if g.name == "td")

    # compiled kernels load (or compile, on a fresh clone) on first use: warm up off the clock
    w_ = time.perf_counter()
    mix.clone().predict_history(hist.truncate(min(T, 40)))
    warmup_s = time.perf_counter() - w_

    # --repeats runs of the same teacher-forced pass, each on a fresh copy of the built mixture;
    # the figure is their median (the machine is shared: the spread is reported too)
    walls, cpus = [], []
    for _ in range(args.repeats):
        run_mix = mix.clone()
        c0, w0 = time.process_time(), time.perf_counter()
        run_mix.predict_history(hist)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    run_mix.check_bound()
    mix = run_mix
    wall, cpu = float(np.median(walls)), float(np.median(cpus))
    batched = n_explicit * T / wall

    # the same work as a straightforward loop over programs (a random sample of the same space)
    rng = np.random.default_rng(args.seed)
    td = [g for g in mix.groups if g.name == "td"][0]
    rows = rng.choice(td.engine.n, size=min(args.loop_programs, td.engine.n), replace=False)
    agents = [ProgramAgent(mix.space.td_program(td.refs[int(i)][1]), mix.grammar, smoothing=mix.smoothing) for i in rows]
    logw = np.zeros(len(agents))
    steps = min(args.loop_steps, T)
    c1, w1 = time.process_time(), time.perf_counter()
    for t in range(steps):
        s, a = int(hist.obs[t]), int(hist.action[t])
        tr = Transition(s, a, float(hist.reward[t]), int(hist.next_obs(t)), bool(hist.terminated[t]), bool(hist.truncated[t]))
        for i, ag in enumerate(agents):
            logw[i] += math.log(ag.action_probs(s)[a])
            ag.observe(tr, intervention=False)
    loop_wall, loop_cpu = time.perf_counter() - w1, time.process_time() - c1
    loop = len(agents) * steps / loop_wall
    shared = shared_regime(hist, args.shared_tables, args.shared_variants, mix.grammar)

    return {
        "hypothesis_steps_per_s": batched,
        "program_steps_per_s": mix.space.n_code_words * T / wall,
        "hypothesis_steps_per_s_cpu": n_explicit * T / cpu,
        "loop_hypothesis_steps_per_s": loop,
        "loop_hypothesis_steps_per_s_cpu": len(agents) * steps / loop_cpu,
        "speedup_vs_loop": batched / loop,
        "n_programs": n_explicit,
        "n_value_tables": n_tables,
        "programs_per_table": n_explicit / max(n_tables, 1),
        "code_words": mix.space.n_code_words,
        "counts_by_bits": mix.space.counts,
        "history_steps": T,
        "seconds_batched": wall,
        "hypothesis_steps_per_s_each_run": [n_explicit * T / w for w in walls],
        "seconds_per_step_batched": wall / T,
        "loop_programs": len(agents),
        "loop_steps": steps,
        "build_seconds": build_s,
        "warmup_seconds": warmup_s,
        "shared_table_regime": shared,
        "threads": args.threads,
        "variants": list(variants),
        "load_average": os.getloadavg()[0],
        "targets": {"hypothesis_steps_per_s": 1e8, "speedup_vs_loop": 100, "n_programs": 1e5},
    }
