"""Compute levels of the scaling sweep and the rungs they run on.

A level scales the rung's transformer: depth, width (heads keep 8-16 dimensions each) and the
number of updates as a fraction of the rung's own; batch, context, data and every evaluation
setting stay the rung's, so the levels differ in training compute only. The top level of
``default`` is the study's own ``default`` transformer (same model, same updates): its models
share the study's cache entries when the histories agree.

Rungs are the study's cheap rungs (bandit, Dark Room 5x5 and 9x9), with the Q2 grid cut to the
Q2-beyond truncation point, so Q2-within and Q2-beyond are measured at the same T.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

from experiments.study.rungs import Preset, Rung, preset as study_preset


@dataclass(frozen=True)
class Level:
    n_layer: int
    d_model: int
    n_head: int
    steps_frac: float   # updates as a fraction of the rung's own

    def name(self) -> str:
        return f"L{self.n_layer}-d{self.d_model}-x{self.steps_frac:g}"


@dataclass
class ScalingPreset:
    name: str
    study: str                      # the study preset whose rungs are scaled
    rungs: tuple[str, ...]
    levels: tuple[Level, ...]
    train_seeds: int
    teacher_seeds: int = 1
    bootstrap: int = 2000           # resamples of the fit's bootstrap and of the studies' intervals
    mixture: bool = True            # also measure the mixture's Q2 (level-independent) for its compute
    notes: str = ""
    #: per rung, fields of the study's rung replaced (e.g. fewer scored tasks in the smoke sweep)
    rung_overrides: dict = field(default_factory=dict)


def _levels(*rows: tuple[int, int, int, float]) -> tuple[Level, ...]:
    return tuple(Level(*r) for r in rows)


PRESETS = {
    "smoke": lambda: ScalingPreset(
        "smoke", "smoke", ("bandit5",),
        _levels((1, 8, 1, 0.15), (1, 16, 2, 0.3), (2, 16, 2, 0.5), (2, 24, 2, 1.0), (2, 32, 2, 2.0)),
        train_seeds=3, bootstrap=500,
        rung_overrides={"bandit5": {"n_test": 2, "history_episodes": 80, "Ts_beyond": (20,), "q1_episodes": 10,
                                    "q3_episodes": 30}},
        notes="one rung (2 scored bandits, T 20), tiny models and tens of updates: a pipeline check (about a "
              "minute), not a result"),
    "default": lambda: ScalingPreset(
        "default", "default", ("bandit5", "darkroom5", "darkroom9"),
        _levels((1, 16, 2, 0.125), (2, 24, 2, 0.25), (2, 32, 4, 0.5), (3, 48, 4, 0.75), (4, 64, 4, 1.0)),
        train_seeds=3,
        notes="5 levels over ~2.5 OOMs of training compute on the three cheap rungs, 3 training seeds; "
              "the top level is the study's default transformer; hours on 2 CPU cores"),
    "paper": lambda: ScalingPreset(
        "paper", "default", ("bandit5", "darkroom5", "darkroom9"),
        _levels((1, 16, 2, 0.125), (2, 32, 4, 0.25), (4, 64, 4, 1.0), (4, 96, 6, 2.0), (6, 128, 8, 4.0),
                (8, 192, 12, 8.0)),
        train_seeds=5, bootstrap=10_000,
        notes="6 levels over ~4.7 OOMs, 5 training seeds: sized for a GPU or a cluster (Ray executor)"),
}


def preset(name: str) -> ScalingPreset:
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r} (known: {', '.join(PRESETS)})")
    return PRESETS[name]()


def base_rungs(p: ScalingPreset) -> list[Rung]:
    """The study preset's rungs named by ``p``, with the Q2 grid cut to the Q2-beyond point."""
    by_name = {r.name: r for r in study_preset(p.study).rungs}
    missing = [n for n in p.rungs if n not in by_name]
    if missing:
        raise KeyError(f"rung(s) {missing} not in the study preset {p.study!r}")
    out = []
    for n in p.rungs:
        r = copy.deepcopy(by_name[n])
        for k, v in p.rung_overrides.get(n, {}).items():
            if not hasattr(r, k):
                raise KeyError(f"rung {n} has no field {k!r}")
            setattr(r, k, v)
        r.Ts = tuple(r.Ts_beyond)
        out.append(r)
    return out


def scaled_rung(rung: Rung, level: Level) -> Rung:
    """A copy of ``rung`` whose transformer has the level's shape and number of updates. The
    learning-rate warm-up is kept below a quarter of the updates (a 10-update run cannot warm up
    for 100)."""
    r = copy.deepcopy(rung)
    tf = r.transformer
    if tf is None:
        raise ValueError(f"rung {rung.name} has no transformer to scale")
    tf.model.update({"n_layer": int(level.n_layer), "d_model": int(level.d_model), "n_head": int(level.n_head)})
    steps = max(4, int(round(tf.train["steps"] * level.steps_frac)))
    tf.train["steps"] = steps
    tf.train["warmup_steps"] = min(int(tf.train.get("warmup_steps", 0)), steps // 4)
    return r


def study_for(p: ScalingPreset) -> Preset:
    """The study preset every level runs under (seeds and interval resamples of the sweep)."""
    s = study_preset(p.study)
    s.teacher_seeds, s.train_seeds, s.bootstrap = p.teacher_seeds, p.train_seeds, p.bootstrap
    return s


def describe(p: ScalingPreset) -> str:
    lines = [f"preset {p.name}: rungs {', '.join(p.rungs)} (from the study's {p.study!r} preset); "
             f"{len(p.levels)} levels x {p.train_seeds} training seeds x {p.teacher_seeds} teacher seed(s); "
             f"bootstrap {p.bootstrap}; mixture Q2 {'yes' if p.mixture else 'no'}; {p.notes}"
             + "".join(f"; {n} with {o}" for n, o in p.rung_overrides.items())]
    for lv in p.levels:
        lines.append(f"  level {lv.name()}: {lv.n_layer} layers, d_model {lv.d_model}, {lv.n_head} heads, "
                     f"{lv.steps_frac:g} x the rung's updates")
    return "\n".join(lines)


__all__ = ["Level", "ScalingPreset", "PRESETS", "preset", "base_rungs", "scaled_rung", "study_for", "describe"]
