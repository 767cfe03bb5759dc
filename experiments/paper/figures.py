"""The paper's figures, one function each, drawn from a loaded study (experiments.paper.load).

One style throughout: each imitator and control has one colour and line style in every figure
(``COLOURS``), curves are means over seeds with their interval as a band, and a cell the study
did not measure (coverage "missing" or "cannot") is written into its panel, never drawn as zero.
Figures are built on ``matplotlib.figure.Figure`` (no pyplot state, no GUI backend) and saved
with fixed metadata, so the same study gives the same bytes."""
from __future__ import annotations

import math
import textwrap
from typing import Callable

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from experiments.paper.load import COMPLEXITY_KEYS, Study
from experiments.paper.style import (BAND_METHOD, COLOURS, COMPLEXITY_LABELS, IMITATORS, ORDER, RATIO_FRAME,
                                    RETURN_LABEL, ROW_HEIGHT, STYLE, SUMMARY_METHOD, VARIANT_DASH, WIDTH, Absent, Drawn,
                                    colour, figure_legend, fmt_T, in_order, label, line_kw, new_figure, save, seed_band)

def _plot_curve(ax, by_seed, name: str, *, label_: str | None = None, **over) -> None:
    x, mean, lo, hi = seed_band(by_seed)
    kw = line_kw(name) | over
    ax.plot(x, mean, label=label_ or label(name), **kw)
    if np.any(np.isfinite(lo)):
        ax.fill_between(x, lo, hi, color=kw["color"], alpha=0.18, lw=0, zorder=1)
    up = np.isposinf(np.asarray(mean, dtype=float))
    if up.any():  # an infinite value (e.g. KL to a control that never takes the teacher's action)
        ax.plot(np.asarray(x)[up], np.full(int(up.sum()), 0.97), transform=ax.get_xaxis_transform(), ls="none",
                marker="^", ms=4, color=kw["color"], clip_on=False, zorder=4)


def _curve(study: Study, rung: str, name: str, question: str, variant: str, curve: str, T: float | None = None):
    """A curve's seeds; where T does not apply (T None) a curve recorded under a single T is taken too."""
    c = study.curves.get((rung, name, question, variant, curve, T))
    if c is None and T is None:
        keys = [k for k in study.curves if k[:5] == (rung, name, question, variant, curve)]
        c = study.curves[keys[0]] if len(keys) == 1 else None
    return c


def _absent_note(ax, study: Study, rung: str, question: str, variant: str, who, absent: list[Absent],
                 drawn: set[str] = frozenset()) -> None:
    """Add to the panel's title which of ``who`` the study did not measure here (never drawn as
    zero), and collect them for the caption; one in ``drawn`` was measured for some seeds only
    and is drawn from those. Call after the title is set."""
    short = []
    for name in in_order(who):
        c = study.not_done(rung, name, question, variant)
        if c is not None:
            short.append(f"{name} {'partly ' if name in drawn else ''}{c.status}")
            absent.append(Absent(rung, name, question, variant, c.status, c.reason, name in drawn))
    if len(short) > 2:
        short = [f"{len(short)} (listed in the caption)"]
    if short:
        # wrapped to the panel's share of the figure's width (about 14 characters an inch at this size)
        spec = ax.get_subplotspec()
        share = len(spec.colspan) / spec.get_gridspec().ncols
        chars = max(28, int(share * ax.figure.get_figwidth() * 14))
        ax.set_title(ax.get_title() + "\n" + textwrap.fill("not measured: " + ", ".join(short), chars), fontsize=7.5)


def _empty(ax, text: str) -> None:
    """A panel with nothing to draw: its axes hidden, the reason written in it."""
    ax.set_axis_off()
    ax.text(0.5, 0.5, "\n".join(textwrap.fill(t, 34) for t in text.split("\n")), transform=ax.transAxes,
            ha="center", va="center", fontsize=7, color="#444444")


def _variants(keys, question: str, known: tuple[str, ...]) -> list[str]:
    """The variants of a question present in ``keys`` (curve, summary or coverage keys): known ones first."""
    have = {k[3] for k in keys if k[2] == question}
    return [v for v in known if v in have] + sorted(have - set(known))


def _return_panel(ax, study: Study, rung: str, question: str, variant: str, who, T, absent: list[Absent], *,
                  title: str, xlabel: str) -> None:
    """One panel of return curves: each of ``who`` the study has, then a note of those it did not measure."""
    drew = set()
    for name in who:
        c = _curve(study, rung, name, question, variant, "return", T)
        if c:
            _plot_curve(ax, c, name)
            drew.add(name)
    ax.set(title=title, xlabel=xlabel, ylabel=RETURN_LABEL)
    _absent_note(ax, study, rung, question, variant, who, absent, drew)
    if not drew:
        why = dict.fromkeys(f"{c.status}: {c.reason}" if c.reason else c.status
                            for c in (study.not_done(rung, n, question, variant) for n in who) if c is not None)
        _empty(ax, "\n".join(why) or "no curves")


def _return_grid(d: Drawn, study: Study, rungs: list[str], question: str, variants: list[str], who,
                 Ts: dict[str, float | None], xlabel: str) -> None:
    """Return curves, one row per rung and one column per variant, into ``d``."""
    fig, axes = new_figure(len(rungs), len(variants))
    for i, rung in enumerate(rungs):
        at = "" if Ts[rung] is None else f", T = {fmt_T(Ts[rung])}"
        for j, variant in enumerate(variants):
            _return_panel(axes[i, j], study, rung, question, variant, who, Ts[rung], d.absent,
                          title=f"{study.label(rung)} — {variant}{at}", xlabel=xlabel)
    figure_legend(fig)
    d.rungs = list(rungs)
    d.figure = fig


def _rungs_with(study: Study, pred: Callable[[tuple], bool]) -> list[str]:
    have = {k[0] for k in study.curves if pred(k)}
    return [r for r in study.rung_names if r in have]


def _grid_cols(n: int) -> tuple[int, int]:
    ncols = min(n, 3)
    return math.ceil(n / ncols), ncols


def _hide_unused(axes: np.ndarray, used: int) -> None:
    for ax in axes.flat[used:]:
        ax.set_visible(False)


# ---- figure 1 -------------------------------------------------------------------------------

def fig_teacher_learning(study: Study) -> Drawn:
    d = Drawn("fig1_teacher_learning", "Teacher learning curves")
    rungs = _rungs_with(study, lambda k: k[2] == "teacher" and k[4] == "return")
    if not rungs:
        d.skipped = "the study has no teacher learning curves (curves.csv, question teacher, curve return)"
        return d
    nrows, ncols = _grid_cols(len(rungs))
    fig, axes = new_figure(nrows, ncols)
    for ax, rung in zip(axes.flat, rungs):
        for key in sorted(k for k in study.curves if k[0] == rung and k[2] == "teacher" and k[4] == "return"):
            _plot_curve(ax, study.curves[key], key[1])
        ax.set(title=study.label(rung), xlabel="episode", ylabel=RETURN_LABEL)
    _hide_unused(axes, len(rungs))
    figure_legend(fig)
    d.rungs = list(rungs)
    d.figure = fig
    d.caption = ("The teacher's own learning on each rung: normalised return per episode (fraction of the task's "
                 "optimal return) while it learns from scratch. " + BAND_METHOD)
    return d


# ---- figure 2 -------------------------------------------------------------------------------

def fig_q1_tracking(study: Study) -> Drawn:
    d = Drawn("fig2_q1_tracking", "Q1: does the imitator act like the teacher now?")
    rungs = _rungs_with(study, lambda k: k[2] == "Q1" and k[4] == "kl_bits")
    bound_rungs = _rungs_with(study, lambda k: k[2] == "Q1" and k[4] in ("cum_log_loss_bits", "bound_bits"))
    rungs = [r for r in study.rung_names if r in set(rungs) | set(bound_rungs)]
    if not rungs:
        d.skipped = "the study has no Q1 tracking curves (curves.csv, question Q1, curve kl_bits)"
        return d
    fig, axes = new_figure(2 if bound_rungs else 1, len(rungs))
    for j, rung in enumerate(rungs):
        ax = axes[0, j]
        keys = sorted(k for k in study.curves if k[0] == rung and k[2] == "Q1" and k[4] == "kl_bits")
        for key in sorted(keys, key=lambda k: ORDER.index(k[1]) if k[1] in ORDER else len(ORDER)):
            _plot_curve(ax, study.curves[key], key[1])
        drew = {k[1] for k in keys}
        if not keys:
            _empty(ax, "no KL curves")
        ax.set(title=study.label(rung), xlabel="decile of learning time", ylabel="KL(teacher‖imitator), bits/step")
        ax.set_ylim(bottom=0)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        who = {k[1] for k in study.coverage if k[0] == rung and k[2] == "Q1"}
        _absent_note(ax, study, rung, "Q1", "now", who, d.absent, drew)
        if bound_rungs:
            ax = axes[1, j]
            loss = _curve(study, rung, "mixture", "Q1", "now", "cum_log_loss_bits")
            bound = _curve(study, rung, "mixture", "Q1", "now", "bound_bits")
            if loss:
                _plot_curve(ax, loss, "mixture", label_="mixture's cumulative log-loss")
            if bound:
                _plot_curve(ax, bound, "teacher", label_="mixture's bound (per sequence)",
                            ls=(0, (2, 1.5)), lw=1.2)
            if not (loss or bound):
                c = study.not_done(rung, "mixture", "Q1", "now")
                _empty(ax, f"mixture: {c.status}" + (f"\n{c.reason}" if c.reason else "") if c else "no mixture curve")
            ax.set(xlabel="step", ylabel="cumulative bits")
    figure_legend(fig)
    d.rungs = list(rungs)
    d.figure = fig
    d.caption = ("Top: KL divergence from the teacher's action distribution to each imitator's and control's, in "
                 "bits per step, teacher-forced along the teacher's history, by decile of its learning time"
                 + (". Bottom: the mixture's cumulative log-loss of the teacher's actions with the per-sequence "
                    "bound drawn over it (the log-loss of the teacher's own program class plus its description "
                    "length in bits plus log2 of the normaliser); the loss staying under the bound is the "
                    "mixture's guarantee" if bound_rungs else "")
                 + (". A triangle at the top of a panel marks an infinite KL: a control that gives no probability "
                    "to an action the teacher took (a deterministic teacher, such as count-bonus Q-learning on the chain, frozen "
                    "half-way and compared with its own early, still-changing choices)"
                    if _any_infinite(study, rungs) else "")
                 + ". " + BAND_METHOD)
    return d


def _any_infinite(study: Study, rungs: list[str]) -> bool:
    return any(np.isposinf(np.asarray(ys, dtype=float)).any()
               for k, c in study.curves.items() if k[0] in rungs and k[2] == "Q1" and k[4] == "kl_bits"
               for _, ys in c.values())


# ---- figure 3 -------------------------------------------------------------------------------

def pick_T(study: Study, rung: str) -> float | None:
    """The truncation point a single-T figure shows for a rung: the middle of the Q2 Ts that every
    variant has (a "beyond" imitator is trained for a few Ts only), else of all its Q2 Ts."""
    by_variant: dict[str, set[float]] = {}
    for k in list(study.curves) + list(study.summary):
        if k[0] == rung and k[2] == "Q2" and k[5] is not None:
            by_variant.setdefault(k[3], set()).add(k[5])
    if not by_variant:
        return None
    Ts = sorted(set.intersection(*by_variant.values()) or set.union(*by_variant.values()))
    return Ts[(len(Ts) - 1) // 2]


Q2_CURVE_WHO = ("mixture", "transformer", "teacher_continued", "teacher_frozen")


def fig_q2_continuation_curves(study: Study) -> Drawn:
    d = Drawn("fig3_q2_continuation_curves", "Q2: acting alone from T, beside the teacher continued and frozen")
    rungs = _rungs_with(study, lambda k: k[2] == "Q2" and k[4] == "return" and k[5] is not None)
    if not rungs:
        d.skipped = "the study has no Q2 continuation curves (curves.csv, question Q2, curve return, T set)"
        return d
    variants = _variants(list(study.curves) + list(study.coverage), "Q2", ("within", "beyond"))
    Ts = {r: pick_T(study, r) for r in rungs}
    _return_grid(d, study, rungs, "Q2", variants, Q2_CURVE_WHO, Ts, "episode")
    shown = [f"{study.label(r)} T = {fmt_T(T)}" for r, T in Ts.items()]
    d.caption = ("Normalised return per episode (counted from the start of the teacher's run) of each imitator acting "
                 "alone from the truncation point T to kT, beside the teacher continued from T (the reference) and "
                 "the teacher frozen at T. Within: the imitator was trained on whole histories and conditioned on one "
                 "cut at T; beyond: every training history was cut at T as well. One T per rung (the middle of the "
                 "truncation points both variants have): " + "; ".join(shown) + ". " + BAND_METHOD)
    return d


# ---- figure 4 -------------------------------------------------------------------------------

def _label_groups(points: list[tuple[float, str]], *, log: bool) -> list[tuple[float, list[str]]]:
    """Rungs at (nearly) the same x share one label instead of overprinting each other (within 2%
    of the axis span, or 5% on a log axis): [(x of the group's first rung, names)]."""
    xs = [float(np.log10(x) if log else x) for x, _ in points]
    span = (max(xs) - min(xs)) if xs else 0.0
    tol = np.log10(1.05) if log else 0.02 * span
    groups: list[tuple[float, float, list[str]]] = []
    for u, (x, name) in sorted(zip(xs, points), key=lambda p: p[0]):
        if groups and u - groups[-1][0] <= tol:
            groups[-1][2].append(name)
        else:
            groups.append((u, x, [name]))
    return [(x, names) for _, x, names in groups]


def _complexity(study: Study, rung: str, key: str) -> float | None:
    v = study.rung(rung)["complexity"].get(key)
    return None if v is None else float(v)


def fig_q2_headline(study: Study) -> Drawn:
    d = Drawn("fig4_q2_continuation_ratio", "Q2 headline: does the frozen imitator keep improving like the teacher?")
    rows = {k: v for k, v in study.summary.items()
            if k[1] in IMITATORS and k[2] == "Q2" and k[4] == "continuation_ratio" and k[5] is not None}
    if not rows:
        d.skipped = "summary.csv has no Q2 continuation_ratio rows for the imitators"
        return d
    rungs = [r for r in study.rung_names if any(k[0] == r for k in rows)]
    variants = _variants(rows, "Q2", ("within", "beyond"))
    axes_keys = [c for c in ("log2_hypotheses", "states_x_actions")
                 if any(_complexity(study, r, c) is not None for r in rungs)]
    fig = Figure(figsize=(WIDTH, 2 * ROW_HEIGHT + 0.6), layout="constrained")
    gs = fig.add_gridspec(2, max(len(rungs), 1) * len(axes_keys or [1]))
    top = [fig.add_subplot(gs[0, j * len(axes_keys or [1]):(j + 1) * len(axes_keys or [1])]) for j in range(len(rungs))]
    span = len(rungs)
    bottom = [fig.add_subplot(gs[1, j * span:(j + 1) * span]) for j in range(len(axes_keys))]

    def ref_lines(ax):
        ax.axhline(1.0, color=colour("teacher_continued"), lw=0.8, ls=":", zorder=1)
        ax.axhline(0.0, color=colour("teacher_frozen"), lw=0.8, ls=":", zorder=1)

    clipped = []

    def ratio_limits(ax, points: list[tuple[float, float, str]]) -> None:
        """Frame the ratio between RATIO_FRAME's ends; a mean beyond them is marked at the edge with its value."""
        means = [m for _, m, _ in points if math.isfinite(m)] or [0.0]
        lo = max(RATIO_FRAME[0], min(-0.1, min(means) - 0.1))
        hi = min(RATIO_FRAME[1], max(1.1, max(means) + 0.1))
        ax.set_ylim(lo, hi)
        stacked: dict[tuple[float, float], int] = {}
        for x, m, c in dict.fromkeys(points):  # the mixture's identical within/beyond points once
            if math.isfinite(m) and not lo <= m <= hi:
                edge = hi if m > hi else lo
                k = stacked[(x, edge)] = stacked.get((x, edge), -1) + 1  # several at one spot: stack the labels
                ax.plot([x], [edge], marker="^" if m > hi else "v", ms=5, color=c, clip_on=False, zorder=4)
                ax.annotate(f"{m:.3g}", (x, edge), textcoords="offset points",
                            xytext=(4, (-8 - 8 * k) if m > hi else (2 + 8 * k)), fontsize=6.5, color=c,
                            annotation_clip=False)
                clipped.append(m)

    for ax, rung in zip(top, rungs):
        ref_lines(ax)
        points = []
        for name in IMITATORS:
            for variant in variants:
                pts = sorted((k[5], v) for k, v in rows.items() if k[0] == rung and k[1] == name and k[3] == variant)
                if not pts:
                    continue
                T = np.array([p[0] for p in pts])
                m, lo, hi = (np.array([getattr(p[1], a) for p in pts]) for a in ("mean", "ci_low", "ci_high"))
                points += [(t, v, colour(name)) for t, v in zip(T, m)]
                ax.plot(T, m, marker="o", ms=3, color=colour(name), lw=1.8, ls=VARIANT_DASH.get(variant, "-."),
                        label=f"{label(name)}, {variant}", zorder=3)
                ax.fill_between(T, lo, hi, color=colour(name), alpha=0.15, lw=0, zorder=1)
        # one box per panel stays readable: the first variant's absences are written in the panel,
        # an absence in another variant only (not already in the box) goes to the caption
        ax.set(title=study.label(rung))
        _absent_note(ax, study, rung, "Q2", variants[0], IMITATORS, d.absent,
                     {k[1] for k in rows if k[0] == rung and k[3] == variants[0]})
        for variant in variants[1:]:
            for name in IMITATORS:
                c = study.not_done(rung, name, "Q2", variant)
                if c is not None and not study.not_done(rung, name, "Q2", variants[0]):
                    d.absent.append(Absent(rung, name, "Q2", variant, c.status, c.reason))
        Ts = sorted({k[5] for k in rows if k[0] == rung})
        ax.set_xscale("log", base=2)
        ax.set_xticks(Ts, [fmt_T(t) for t in Ts])
        ax.minorticks_off()
        ax.set(xlabel="truncation point T", ylabel="continuation ratio")
        ratio_limits(ax, points)

    chosen = {r: pick_T(study, r) for r in rungs}
    for ax, ckey in zip(bottom, axes_keys):
        ref_lines(ax)
        points = []
        for name in IMITATORS:
            for variant in variants:
                pts = []
                for r in rungs:
                    c, v = _complexity(study, r, ckey), rows.get((r, name, "Q2", variant, "continuation_ratio", chosen[r]))
                    if c is not None and v is not None:
                        pts.append((c, v))
                if not pts:
                    continue
                pts.sort(key=lambda p: p[0])
                x = np.array([p[0] for p in pts])
                m, lo, hi = (np.array([getattr(p[1], a) for p in pts]) for a in ("mean", "ci_low", "ci_high"))
                points += [(c, v, colour(name)) for c, v in zip(x, m)]
                # across rungs the intervals are bars, not a band: rungs are points, not a continuum
                ax.errorbar(x, m, yerr=np.vstack([m - lo, hi - m]), marker="o", ms=3.5, capsize=2, color=colour(name),
                            lw=1.4, ls=VARIANT_DASH.get(variant, "-."), zorder=3)
        if ckey == "states_x_actions":
            ax.set_xscale("log")
        have = [r for r in rungs if _complexity(study, r, ckey) is not None]
        no = [study.label(r) for r in rungs if _complexity(study, r, ckey) is None]
        for x, names in _label_groups([(_complexity(study, r, ckey), r) for r in have], log=ckey == "states_x_actions"):
            one = len(names) == 1  # a group is stacked, level, so that it does not squeeze the panel
            ax.annotate(names[0] if one else "\n".join(names), (x, 1.0), textcoords="offset points",
                        xytext=(2, 3), ha="left" if one else "right", va="bottom", rotation=45 if one else 0,
                        rotation_mode="anchor", fontsize=6.5, color="#444444")
        if no:
            ax.text(0.98, 0.03, "no value: " + ", ".join(no), transform=ax.transAxes, ha="right", va="bottom",
                    fontsize=6.5, color="#444444")
        ax.set(xlabel=COMPLEXITY_LABELS[ckey], ylabel="continuation ratio (middle T)")
        ratio_limits(ax, points)
    extra = [(Line2D([], [], color=colour("teacher_continued"), lw=0.8, ls=":"), "1: keeps improving like the teacher"),
             (Line2D([], [], color=colour("teacher_frozen"), lw=0.8, ls=":"), "0: frozen where its history ended")]
    figure_legend(fig, extra)
    d.rungs = list(rungs)
    d.figure = fig
    d.caption = ("The continuation ratio (R_imitator(kT) − R_teacher(T)) / (R_teacher(kT) − R_teacher(T)): 1 means the "
                 "frozen imitator, acting alone from T, improved as much as the teacher continued from T; 0 means it "
                 "stayed at the level it saw. Top: against the truncation point T, per rung, both imitators, solid "
                 "= within (trained on whole histories), dashed = beyond (training histories cut at T too; the mixture has no training, so its two coincide). Bottom: "
                 "against each rung's complexity (" + ", ".join(COMPLEXITY_LABELS[c] for c in axes_keys) + ", from "
                 "study.json; rungs named as in the tables), bars the intervals, at the middle truncation point both variants have on each rung ("
                 + "; ".join(f"{study.label(r)} T = {fmt_T(t)}" for r, t in chosen.items()) + "). " + SUMMARY_METHOD)
    if clipped:
        d.caption += (f" The vertical axis stops at {RATIO_FRAME[0]:g} and {RATIO_FRAME[1]:g} at most: a ratio is unstable "
                      "where the teacher itself barely improves from T to kT, and the means beyond the frame "
                      f"({', '.join(f'{m:.3g}' for m in clipped)}) are drawn as triangles at its edge with their value.")
    return d


# ---- figure 5 -------------------------------------------------------------------------------

Q3_WHO = ("mixture", "transformer", "teacher_fresh", "uniform")


def fig_q3_new_task(study: Study) -> Drawn:
    d = Drawn("fig5_q3_new_task", "Q3: on a task it never saw, does it start badly and improve like a fresh teacher?")
    rungs = _rungs_with(study, lambda k: k[2] == "Q3" and k[4] == "return")
    if not rungs:
        d.skipped = "the study has no Q3 return curves (curves.csv, question Q3, curve return)"
        return d
    variants = _variants(list(study.curves) + list(study.coverage), "Q3", ("heldout", "transplant"))
    _return_grid(d, study, rungs, "Q3", variants, Q3_WHO, {r: None for r in rungs}, "episode on the new task")
    d.caption = ("Normalised return per episode on a task the imitator never saw — heldout: new tasks of the rung's "
                 "family; transplant: a different task family — for each imitator, a fresh teacher learning the task "
                 "from scratch, and uniform random actions. " + BAND_METHOD)
    return d


# ---- figure 6 -------------------------------------------------------------------------------

def fig_mixture_beliefs(study: Study) -> Drawn:
    d = Drawn("fig6_mixture_beliefs", "The mixture's beliefs about the teacher")
    mass = {r: _curve(study, r, "mixture", "Q1", "now", "teacher_class_mass") for r in study.rung_names}
    rungs = [r for r in study.rung_names if mass[r]]
    if not rungs:
        d.skipped = "the study has no teacher_class_mass curves (curves.csv, mixture, question Q1)"
        return d
    others = [r for r in study.rung_names if r not in rungs and study.not_done(r, "mixture", "Q1", "now")]
    nrows, ncols = _grid_cols(len(rungs) + len(others))
    fig, axes = new_figure(nrows, ncols)
    for ax, rung in zip(axes.flat, rungs + others):
        ax.set(title=study.label(rung), xlabel="step of the teacher's history", ylabel="posterior mass", ylim=(-0.02, 1.02))
        if rung in rungs:
            _plot_curve(ax, mass[rung], "mixture", label_="mixture: posterior mass of the teacher's class")
        else:
            c = study.not_done(rung, "mixture", "Q1", "now")
            d.absent.append(Absent(rung, "mixture", "Q1", "now", c.status, c.reason))
            _empty(ax, f"mixture: {c.status}" + (f"\n{c.reason}" if c.reason else ""))
    _hide_unused(axes, len(rungs) + len(others))
    figure_legend(fig)
    d.rungs = rungs + others
    d.figure = fig
    d.caption = ("The mixture's posterior mass on the teacher's own program class (every enumerated program equivalent "
                 "to the teacher's learning algorithm, prior weights added) after each step of the teacher's "
                 "history; 1 means the mixture has identified how the teacher learns (the study's tables carry this class's "
                 "mass; the mixture's top programs stay in its per-cell records). " + BAND_METHOD)
    return d


# ---- figure 7 -------------------------------------------------------------------------------

def fig_complexity_axis(study: Study) -> Drawn:
    d = Drawn("fig7_complexity_axis", "The complexity axis")
    rungs = study.rung_names
    if not rungs:
        d.skipped = "study.json lists no rungs"
        return d
    fig, axes = new_figure(2, 2, height=2 * ROW_HEIGHT + 1.2)
    pos = np.arange(len(rungs))
    for ax, ckey in zip(axes.flat, COMPLEXITY_KEYS):
        vals = [_complexity(study, r, ckey) for r in rungs]
        have = [v for v in vals if v is not None]
        log = ckey != "log2_hypotheses" and have and min(have) > 0 and max(have) / min(have) > 20
        for p, v in zip(pos, vals):
            if v is None:
                ax.text(p, 0.02, "n/a", transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=7,
                        color="#444444")
            else:
                ax.bar(p, v, color="#666666", width=0.6, zorder=2)
                ax.annotate(f"{v:,.0f}" if v >= 100 else f"{v:.3g}", (p, v), textcoords="offset points", xytext=(0, 2), ha="center", fontsize=6.5)
        if log:
            ax.set_yscale("log")
        ax.set_xticks(pos, [study.label(r) for r in rungs], rotation=30, ha="right")
        ax.set_xlim(-0.6, len(rungs) - 0.4)  # a rung without a value keeps its slot (and its n/a)
        ax.set_title(COMPLEXITY_LABELS[ckey])
        ax.grid(axis="x", visible=False)
    d.rungs = list(rungs)
    d.figure = fig
    d.caption = ("Each rung's four complexity coordinates, from study.json: log2 of the number of hypotheses the "
                 "mixture enumerates under its budget, the number of state–action pairs |S|·|A|, the teacher's "
                 "parameter count, and the teacher's steps to reach 90% of optimal return. n/a: not defined or not "
                 "measured for that rung (drawn as text, not as a zero bar).")
    return d


FIGURES: tuple[Callable[[Study], Drawn], ...] = (
    fig_teacher_learning, fig_q1_tracking, fig_q2_continuation_curves, fig_q2_headline, fig_q3_new_task,
    fig_mixture_beliefs, fig_complexity_axis,
)


def draw_all(study: Study) -> list[Drawn]:
    """Every figure in the paper's order (skipped ones included, with the reason)."""
    with matplotlib.rc_context(STYLE):
        return [f(study) for f in FIGURES]


__all__ = ["Drawn", "Absent", "FIGURES", "draw_all", "save", "colour", "label", "seed_band", "pick_T", "in_order", "fmt_T", "COLOURS", "IMITATORS"]
