"""The scaling sweep in the paper: two figures and a REPORT.md section, from a sweep's directory.

Drawn when ``python -m experiments.paper`` is given ``--scaling DIR`` (the output of
``python -m experiments.scaling``). Everything comes from ``DIR/fit.json`` and ``DIR/scaling.csv``
(the points, the fit, its band and extrapolations as the sweep computed them) and from
``theory.compute.oom_table()`` (the forward-pass simulation cost by the published constructions);
nothing is refitted here and no number in the section is typed by hand.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from experiments.paper.style import RATIO_FRAME, ROW_HEIGHT, VARIANT_DASH, Drawn, colour, new_figure
from experiments.paper.load import StudyError
from learners.files import read_json
from experiments.scaling.fit import BAND_EXTENSION, MAX_EXTRAPOLATION_OOMS
from theory import compute as TC

SCALING_FORMAT = "hypospace.scaling/"
SCALING_COLUMNS = ("rung", "params", "train_flops", "flops_per_token", "metric", "seed", "value")
CONTINUATION = {"Q2_beyond_continuation_ratio": "beyond", "Q2_within_continuation_ratio": "within"}
METRIC_LABELS = {"Q2_beyond_continuation_ratio": "Q2-beyond continuation ratio",
                 "Q2_within_continuation_ratio": "Q2-within continuation ratio",
                 "Q3_heldout_auc_ratio": "Q3 held-out AUC ratio", "Q1_kl_bits_late": "Q1 KL to the teacher (bits/step)"}


@dataclass
class Scaling:
    directory: Path
    fit: dict[str, Any]
    rows: list[dict[str, Any]]

    @property
    def rungs(self) -> list[str]:
        return list(self.fit.get("fits", {}))


def load_scaling(directory: str | Path) -> Scaling:
    """Read a sweep's fit.json and scaling.csv (a ``StudyError`` names what is wrong)."""
    d = Path(directory)
    if not d.is_dir():
        raise StudyError(f"--scaling {d}: not a directory")
    fj, sc = d / "fit.json", d / "scaling.csv"
    for p in (fj, sc):
        if not p.is_file():
            raise StudyError(f"--scaling {d}: no {p.name} (the output of python -m experiments.scaling)")
    fit = read_json(fj, StudyError)
    if not isinstance(fit, dict) or not str(fit.get("format", "")).startswith(SCALING_FORMAT) \
            or not isinstance(fit.get("fits"), dict):
        raise StudyError(f"{fj}: not a scaling sweep's fit.json (format {SCALING_FORMAT}1)")
    rows = []
    with open(sc, newline="") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != SCALING_COLUMNS:
            raise StudyError(f"{sc}: columns must be {','.join(SCALING_COLUMNS)}")
        for i, r in enumerate(reader, start=2):
            try:
                rows.append({"rung": r["rung"], "params": int(r["params"]), "train_flops": float(r["train_flops"]),
                             "flops_per_token": float(r["flops_per_token"]), "metric": r["metric"],
                             "seed": int(r["seed"]), "value": float(r["value"])})
            except (TypeError, ValueError):
                raise StudyError(f"{sc}, line {i}: not a number where one is needed") from None
    return Scaling(d, fit, rows)


def _e(x: float) -> str:
    """A power of ten as the section prints it: 10^12.3."""
    return f"10^{x:.1f}"


# ---- figure S1: continuation ratio against training compute ------------------------------------
def fig_scaling_continuation(sc: Scaling) -> Drawn:
    d = Drawn("figS1_scaling_continuation", "Continuation ratio against the transformer's training compute")
    rungs = [r for r in sc.rungs if any(m in sc.fit["fits"][r] for m in CONTINUATION)]
    if not rungs:
        d.skipped = "fit.json has no continuation-ratio fit"
        return d
    fig, axes = new_figure(1, len(rungs), height=ROW_HEIGHT + 0.9)
    for ax, rung in zip(axes.flat, rungs):
        xs, ys = [], []
        for metric, variant in CONTINUATION.items():
            f = sc.fit["fits"][rung].get(metric)
            if f is None:
                continue
            c = colour("transformer")
            pts = [r for r in sc.rows if r["rung"] == rung and r["metric"] == metric]
            x = np.array([math.log10(r["train_flops"]) for r in pts])
            y = np.array([r["value"] for r in pts])
            xs += list(x)
            ys += list(y)
            mk = "o" if variant == "beyond" else "s"
            ax.scatter(x, y, s=9, marker=mk, facecolors=c if variant == "beyond" else "none", edgecolors=c,
                       linewidths=0.8, zorder=3, label=f"{variant}: seeds")
            b = f.get("band")
            if b:
                gx = np.array(b["log10_compute"])
                xs.append(float(gx.max()))
                ax.plot(gx, b["fit"], color=c, linestyle=VARIANT_DASH[variant], label=f"{variant}: fit")
                ax.fill_between(gx, b["low"], b["high"], color=c, alpha=0.12 if variant == "beyond" else 0.07, lw=0)
            for cr in f.get("crossings", []):
                if cr.get("warranted"):
                    lo, hi = cr["log10_compute_ci"]
                    hi_draw = hi if hi is not None else ax.get_xlim()[1]
                    ax.errorbar([cr["log10_compute"]], [cr["target"]],
                                xerr=[[cr["log10_compute"] - lo], [hi_draw - cr["log10_compute"]]],
                                fmt="D", ms=3.5, color=c, capsize=2, lw=0.8, zorder=4)
        # the frame: every seed's point, the ratio scale of the paper's other figures, the band's reach
        ax.set_xlim(min(xs) - 0.2, max(xs) + 0.2)
        ax.set_ylim(min(RATIO_FRAME[0], min(ys) - 0.15), max(RATIO_FRAME[1], max(ys) + 0.15))
        ax.axhline(1.0, color=colour("teacher_continued"), lw=0.8, linestyle=":")
        ax.axhline(0.0, color=colour("teacher_frozen"), lw=0.8, linestyle=":")
        ax.set_title(rung)
        ax.set_xlabel("log10 training FLOPs")
        ax.set_ylabel("continuation ratio")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=4, frameon=False)
    d.rungs, d.figure = rungs, fig
    d.caption = (f"The AD transformer's Q2 continuation ratio (1 = keeps improving like the teacher, dotted; 0 = frozen "
                 "at the level it saw) at each training-compute level, one point per training seed (filled: beyond, "
                 "never trained past T; open: within). Lines: least-squares fit against log10 training FLOPs, drawn "
                 f"{BAND_EXTENSION:g} OOMs past the largest level; bands: pointwise 95% percentile band of the bootstrap fits (paired "
                 "bootstrap of the points, fit.json). Diamonds: where the fit reaches 0.5 and 0.9, with their 95% "
                 "intervals (cut at the frame), only where the slope's interval lies above zero.")
    return d


# ---- figure S2: how many OOMs ----------------------------------------------------------------------
def fig_how_many_ooms(rows: list[dict[str, Any]]) -> Drawn:
    d = Drawn("figS2_how_many_ooms", "How many OOMs: simulating the teacher's learning in a forward pass")
    fig, axes = new_figure(1, 2, height=ROW_HEIGHT + 1.3)
    names = [r["name"] for r in rows]
    pos = np.arange(len(rows))
    ax = axes[0, 0]
    for p, r in zip(pos, rows):
        ax.vlines(p, r["sim_flops_per_step_low"], r["sim_flops_per_step_high"], color="#555555", lw=5, alpha=0.6,
                  label="forward-pass simulation (low–high)" if p == 0 else None)
        ax.scatter([p], [r["teacher_flops_per_step"]], color=colour("teacher"), s=14, zorder=3,
                   label="teacher's own update" if p == 0 else None)
        if "imitator_flops_per_step" in r:
            ax.scatter([p], [r["imitator_flops_per_step"]], color=colour("transformer"), marker="s", s=14, zorder=3,
                       label="AD transformer forward" if p == 0 else None)
    ax.set_yscale("log")
    ax.set_ylabel("FLOPs per step")
    ax.set_xticks(pos, names, rotation=25, ha="right")
    ax.set_title("compute per step")
    ax = axes[0, 1]
    lo_q, hi_q = TC.OOM_QUESTION
    ax.axhspan(lo_q, hi_q, color="#F0E442", alpha=0.35, lw=0, label=f"the {lo_q:g}–{hi_q:g} OOM question")
    for p, r in zip(pos, rows):
        ax.vlines(p - 0.1, r["ooms_low"], r["ooms_high"], color=colour("teacher"), lw=4, alpha=0.7,
                  label="vs the teacher's update" if p == 0 else None)
        if "ooms_vs_imitator_low" in r:
            ax.vlines(p + 0.1, r["ooms_vs_imitator_low"], r["ooms_vs_imitator_high"], color=colour("transformer"), lw=4,
                      alpha=0.7, label="vs the AD transformer's forward" if p == 0 else None)
    ax.axhline(0, color="#999999", lw=0.6)
    ax.set_ylabel("OOMs more FLOPs per step")
    ax.set_xticks(pos, names, rotation=25, ha="right")
    ax.set_title("the simulation's excess")
    for a in axes.flat:
        a.grid(axis="x", visible=False)
    hs, ls = [], []
    for a in axes.flat:
        for h, lab in zip(*a.get_legend_handles_labels()):
            if lab not in ls:
                hs.append(h)
                ls.append(lab)
    fig.legend(hs, ls, loc="outside lower center", ncol=3, frameon=False)
    d.rungs, d.figure = names, fig
    d.caption = ("FLOPs per step a forward pass needs to run the teacher's learning by the published constructions "
                 "(theory.compute: an L-layer linear transformer = L steps of batch TD, Wang et al. 2025; one layer = "
                 "one least-squares gradient step, von Oswald et al. 2023; depth O(H) for planning, Lin et al. 2024), "
                 "against the teacher's own update and the AD transformer's forward pass. Low: depth of the planning "
                 "horizon; high: one layer per sequential teacher update. Right: the ratio in orders of magnitude, "
                 "with the 3–5 OOM question shaded.")
    return d


# ---- REPORT.md section ------------------------------------------------------------------------------
def _slope(f: dict[str, Any]) -> str:
    if f.get("slope") is None:
        return "no fit"
    return f"{f['slope']:+.3f} [{f['slope_ci'][0]:+.3f}, {f['slope_ci'][1]:+.3f}]"


def _crossing_cell(f: dict[str, Any], target: float) -> str:
    for c in f.get("crossings", []):
        if c["target"] == target:
            if not c.get("warranted"):
                return "not stated (too far)" if "log10_compute_unwarranted" in c else "not warranted"
            lo, hi = c["log10_compute_ci"]
            return f"{_e(c['log10_compute'])} [{_e(lo)}, {_e(hi) if hi is not None else '∞'}]"
    return "—"


def _level_means(sc: Scaling, rung: str, metric: str) -> str:
    """The measured means per compute level, smallest first: a straight line can overstate what
    more compute buys where these stop rising, so the reader sees them beside the fit."""
    by: dict[float, list[float]] = {}
    for r in sc.rows:
        if r["rung"] == rung and r["metric"] == metric:
            by.setdefault(r["train_flops"], []).append(r["value"])
    return " → ".join(f"{sum(v) / len(v):.2f}" for _, v in sorted(by.items()))


def _answer(sc: Scaling, rung: str) -> str:
    f = sc.fit["fits"][rung].get("Q2_beyond_continuation_ratio")
    if f is None or f.get("slope") is None:
        return f"On {rung} the sweep has no Q2-beyond fit."
    return _fitted(sc, rung, f) + (f" Measured means per level, smallest first: "
                                   f"{_level_means(sc, rung, 'Q2_beyond_continuation_ratio')}.")


def _fitted(sc: Scaling, rung: str, f: dict[str, Any]) -> str:
    lo_x, hi_x = f["log10_compute_range"]
    head = (f"On {rung}, over {_e(lo_x)}–{_e(hi_x)} training FLOPs ({hi_x - lo_x:.1f} OOMs), the Q2-beyond continuation "
            f"ratio changes by {_slope(f)} per decade of compute")
    cr = {c["target"]: c for c in f.get("crossings", [])}
    if f["slope_ci"][0] <= 0:
        return head + ": the fit is flat or falling, and the measurements support no extrapolation to 0.5 or 0.9."
    parts = []
    for t in sorted(cr):
        c = cr[t]
        if not c.get("warranted"):
            parts.append(f"{t:g} only {c['log10_compute_unwarranted'] - hi_x:.1f} OOMs past the largest model, "
                         "too far past the data to state")
            continue
        lo, hi = c["log10_compute_ci"]
        where = ("within the range measured" if c.get("reached_in_range")
                 else f"{c['ooms_beyond_largest']:+.1f} OOMs past the largest model")
        parts.append(f"{t:g} at {_e(c['log10_compute'])} FLOPs ({where}; 95% interval "
                     f"{_e(lo)}–{_e(hi) if hi is not None else 'unbounded'})")
    return head + "; along the fitted line it reaches " + " and ".join(parts) + \
        f" (a straight line in log compute, stated no further than {MAX_EXTRAPOLATION_OOMS:g} OOMs past the data)."


def report_section(sc: Scaling, drawn: list[Drawn], formats: tuple[str, ...], oom_rows: list[dict[str, Any]]) -> str:
    show = "png" if "png" in formats else formats[0]
    fit = sc.fit
    p = fit.get("provenance", {})
    lines = ["## Scaling: how much compute would a forward pass need to keep improving like the teacher?", "",
             f"From the scaling sweep in `{sc.directory.name}` (preset `{fit.get('config', {}).get('preset', '?')}`, "
             f"command `{p.get('command', 'unknown')}`, commit `{p.get('commit', 'unknown')}`): "
             f"{len({lv['level'] for lv in fit.get('levels', [])}) or '?'} training-compute levels per rung x "
             f"{fit.get('config', {}).get('train_seeds', '?')} training seeds. {fit.get('model', '')}.", ""]
    lines += [" ".join(_answer(sc, r) for r in sc.rungs), ""]
    oom = "; ".join(f"{r['name']}: {r['ooms_low']:+.1f} to {r['ooms_high']:+.1f} OOMs over the teacher"
                    + (f", {r['ooms_vs_imitator_low']:+.1f} to {r['ooms_vs_imitator_high']:+.1f} over the AD forward pass"
                       if "ooms_vs_imitator_low" in r else "") for r in oom_rows)
    lines += [f"By the published constructions (theory.compute), a forward pass that runs the teacher's learning "
              f"needs per step: {oom}.", ""]
    lines += ["| rung | metric | slope per decade [95%] | intercept | reaches 0.5 at [95%] | reaches 0.9 at [95%] |",
              "|---|---|---|---|---|---|"]
    for rung in sc.rungs:
        for metric, f in fit["fits"][rung].items():
            inter = "—" if f.get("intercept") is None else f"{f['intercept']:+.3f}"
            cont = metric in CONTINUATION
            lines.append(f"| {rung} | {METRIC_LABELS.get(metric, metric)} | {_slope(f)} | {inter} | "
                         f"{_crossing_cell(f, 0.5) if cont else '—'} | {_crossing_cell(f, 0.9) if cont else '—'} |")
    lines += ["", "Compute beside it, per Q2 run (k·T steps), from fit.json:", "",
              "| rung | teacher FLOPs | mixture FLOPs (its ratio) | transformer forward FLOPs (largest level) | "
              "transformer training FLOPs (largest level) |", "|---|---|---|---|---|"]
    for rung, b in fit.get("compute_beside", {}).items():
        mix = b.get("mixture", {})
        if "flops_per_q2_run" in mix:
            ratio = mix.get("continuation_ratio_mean")
            mtxt = f"{mix['flops_per_q2_run']:.3g} ({'n/a' if ratio is None else f'{ratio:.3f}'})"
        else:
            mtxt = mix.get("cannot", "—")
        top = b.get("transformer_top_level", {})
        lines.append(f"| {rung} | {b['teacher']['flops_per_q2_run']:.3g} | {mtxt} | "
                     f"{top.get('forward_flops_per_q2_run', float('nan')):.3g} | {top.get('train_flops', float('nan')):.3g} |")
    lines.append("")
    for i, d in enumerate(drawn, start=1):
        lines += [f"### Figure S{i}. {d.title}", ""]
        if d.figure is None:
            lines += [f"Not drawn: {d.skipped}.", ""]
            continue
        lines += [f"![Figure S{i}: {d.title}]({d.stem}.{show})", "", f"*Figure S{i}.* {d.caption}", "",
                  "Files: " + ", ".join(f"[{d.stem}.{f}]({d.stem}.{f})" for f in formats), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def draw_scaling(sc: Scaling) -> tuple[list[Drawn], list[dict[str, Any]]]:
    rows = TC.oom_table()
    return [fig_scaling_continuation(sc), fig_how_many_ooms(rows)], rows


__all__ = ["Scaling", "load_scaling", "fig_scaling_continuation", "fig_how_many_ooms", "report_section", "draw_scaling"]
