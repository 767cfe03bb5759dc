"""The paper's one style: colours, labels, figure size, intervals over seeds, and byte-stable saving.

Every figure module (``figures``, ``scaling``) draws with these, so that each imitator and control
has one colour and line style everywhere and the same study gives the same bytes (fixed metadata,
no dates, a fixed SVG salt)."""
from __future__ import annotations

import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from scipy import stats

# What fixes the bytes: no dates in PDF, no software tag in PNG, a fixed SVG hash salt; TrueType
# fonts embedded (type 42) so the PDF's text stays text in a paper.
STYLE = {
    "svg.hashsalt": "hypospace-paper",
    "pdf.fonttype": 42,
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.titlesize": 8.5,
    "axes.labelsize": 8,
    "legend.fontsize": 7.5,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "lines.linewidth": 1.4,
    "savefig.dpi": 150,
}
METADATA = {"pdf": {"CreationDate": None, "ModDate": None}, "png": {"Software": None}, "svg": {"Date": None}}

IMITATORS = ("mixture", "transformer")
# Okabe-Ito colours (distinguishable with colour-blindness); an imitator's ablations in a lighter
# shade of its own colour, the teacher in black, random in grey.
COLOURS = {
    "mixture": "#0072B2",
    "transformer": "#D55E00",
    "mixture_prior": "#56B4E9",
    "transformer_empty": "#E69F00",
    "expert_distillation": "#CC79A7",
    "teacher": "#000000",
    "teacher_continued": "#000000",
    "teacher_frozen": "#7F7F7F",
    "teacher_fresh": "#009E73",
    "uniform": "#BBBBBB",
}
# What each imitator and control is, for the report's key to its tables.
MEANINGS = {
    "mixture": "the idealized imitator: a bounded Solomonoff-style mixture over agent programs",
    "transformer": "the practical imitator: an Algorithm-Distillation transformer run in context",
    "mixture_prior": "control: the mixture acting from its prior, never shown the teacher",
    "transformer_empty": "control: the transformer from an empty context",
    "expert_distillation": "control: a transformer trained on the teacher's final episodes only",
    "teacher": "the teacher learning from scratch",
    "teacher_continued": "reference: the teacher continued from T",
    "teacher_frozen": "control: the teacher frozen at T",
    "teacher_fresh": "reference: a fresh teacher learning the new task",
    "uniform": "control: uniform random actions",
}
LABELS = {
    "mixture": "mixture (Solomonoff)",
    "transformer": "transformer (AD)",
    "mixture_prior": "mixture, prior only",
    "transformer_empty": "transformer, empty context",
    "expert_distillation": "expert distillation",
    "teacher": "teacher",
    "teacher_continued": "teacher continued",
    "teacher_frozen": "teacher frozen at T",
    "teacher_fresh": "fresh teacher",
    "uniform": "uniform random",
}
ORDER = tuple(COLOURS)
_SPARE = ("#8C564B", "#9467BD", "#17BECF", "#BCBD22", "#E377C2")
# The continuation ratio is framed to this range: it explodes where the teacher itself barely
# improves from T to kT (a near-zero denominator), and one such point would flatten the rest.
RATIO_FRAME = (-1.5, 2.0)
VARIANT_DASH = {"within": "-", "beyond": (0, (4, 2))}
COMPLEXITY_LABELS = {
    "log2_hypotheses": "log2 hypotheses (mixture budget)",
    "states_x_actions": "|S|·|A|",
    "teacher_params": "teacher parameters",
    "teacher_steps_to_90": "teacher steps to 90% of optimal",
}
WIDTH = 7.0          # inches: the full width of a two-column paper
ROW_HEIGHT = 2.1
MAX_CURVE_POINTS = 400   # a plotted line needs no more; longer curves are sampled evenly
BAND_RESAMPLES = 2000
RETURN_LABEL = "return (fraction of optimal)"

BAND_METHOD = (f"Lines are means over seeds of the per-seed curves (each already averaged over test tasks); bands are "
               f"95% percentile bootstrap intervals of that mean over seeds ({BAND_RESAMPLES:,} resamples, fixed "
               f"generator); a point seen by one seed only has no band.")
SUMMARY_METHOD = ("Points are the means in summary.csv; bands and bars are its 95% intervals (percentile, stratified "
                  "bootstrap over seeds with test tasks as strata).")


@dataclass(frozen=True)
class Absent:
    """A cell a figure would show but the study did not measure (``partly``: some seeds were, and
    the figure draws those)."""
    rung: str
    name: str
    question: str
    variant: str
    status: str
    reason: str
    partly: bool = False


@dataclass
class Drawn:
    """One figure: its file stem and title, the matplotlib figure (None when skipped), a caption
    saying what is plotted and how intervals are made, and the cells that could not be drawn."""
    stem: str
    title: str
    figure: Figure | None = None
    caption: str = ""
    absent: list[Absent] = field(default_factory=list)
    skipped: str = ""
    rungs: list[str] = field(default_factory=list)  # the rungs it shows


def colour(name: str) -> str:
    """The fixed colour of an imitator or control (unknown names: a fixed colour from their name)."""
    return COLOURS.get(name) or _SPARE[zlib.crc32(name.encode()) % len(_SPARE)]


def label(name: str) -> str:
    return LABELS.get(name, name.replace("_", " "))


def in_order(names) -> list[str]:
    names = set(names)
    return [n for n in ORDER if n in names] + sorted(names - set(ORDER))


def line_kw(name: str) -> dict:
    main = name in IMITATORS or name == "teacher"
    return {"color": colour(name), "lw": 1.8 if main else 1.2, "ls": "-" if main else (0, (5, 2)),
            "zorder": 3 if main else 2}


def fmt_T(T: float | None) -> str:
    if T is None:
        return ""
    return str(int(T)) if float(T).is_integer() else f"{T:g}"


# ---- curves over seeds ----------------------------------------------------------------------

def seed_band(by_seed: dict[int, tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """x, the mean over seeds, and the 95% percentile bootstrap band of that mean (NaN where fewer
    than two seeds have the point). Seeds are aligned on x; a long curve is sampled at
    ``MAX_CURVE_POINTS`` evenly spaced x."""
    xs = np.unique(np.concatenate([x for x, _ in by_seed.values()]))
    if len(xs) > MAX_CURVE_POINTS:
        xs = xs[np.unique(np.round(np.linspace(0, len(xs) - 1, MAX_CURVE_POINTS)).astype(int))]
    m = np.full((len(by_seed), len(xs)), np.nan)
    for i, (x, y) in enumerate(by_seed.values()):
        idx = np.searchsorted(xs, x)
        ok = (idx < len(xs)) & (xs[np.minimum(idx, len(xs) - 1)] == x)
        m[i, idx[ok]] = y[ok]
    count = np.sum(~np.isnan(m), axis=0)
    mean = np.nanmean(m, axis=0) if len(by_seed) else np.full(len(xs), np.nan)
    lo = np.full(len(xs), np.nan)
    hi = np.full(len(xs), np.nan)
    rng = np.random.default_rng(0)
    # no band where a seed's value is infinite (the mean is infinite there; _plot_curve marks it)
    finite = ~np.any(np.isinf(m), axis=0)
    full = (count == len(by_seed)) & finite
    with warnings.catch_warnings():
        # identical values across seeds (a deterministic control) make a degenerate, zero-width band
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        if len(by_seed) >= 2 and full.any():
            r = stats.bootstrap((m[:, full],), np.mean, axis=0, vectorized=True, n_resamples=BAND_RESAMPLES,
                                method="percentile", batch=200, rng=rng)
            lo[full], hi[full] = r.confidence_interval.low, r.confidence_interval.high
        for j in np.flatnonzero(~full & finite & (count >= 2)):
            r = stats.bootstrap((m[~np.isnan(m[:, j]), j],), np.mean, n_resamples=BAND_RESAMPLES,
                                method="percentile", rng=rng)
            lo[j], hi[j] = r.confidence_interval.low, r.confidence_interval.high
    return xs, mean, lo, hi


def new_figure(nrows: int, ncols: int, *, height: float | None = None) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(WIDTH, height or ROW_HEIGHT * nrows + 0.5), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def figure_legend(fig: Figure, extra: list[tuple[object, str]] = ()) -> None:
    """One legend for the whole figure, in the fixed imitator order, below the panels."""
    seen: dict[str, object] = {}
    for ax in fig.axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    rank = {label(n): i for i, n in enumerate(ORDER)}
    labs = sorted(seen, key=lambda s: (rank.get(s, len(rank)), s))
    handles = [seen[s] for s in labs] + [h for h, _ in extra]
    labs = labs + [s for _, s in extra]
    if handles:
        fig.legend(handles, labs, loc="outside lower center", ncol=min(len(labs), 3), frameon=False)


def save(drawn: Drawn, directory: Path, formats: tuple[str, ...]) -> list[Path]:
    """Write a figure in each format with fixed metadata; returns the paths written."""
    out = []
    with matplotlib.rc_context(STYLE):
        for fmt in formats:
            p = directory / f"{drawn.stem}.{fmt}"
            drawn.figure.savefig(p, format=fmt, metadata=METADATA[fmt])
            out.append(p)
    return out


__all__ = ["STYLE", "METADATA", "IMITATORS", "COLOURS", "MEANINGS", "LABELS", "ORDER", "RATIO_FRAME", "VARIANT_DASH",
           "COMPLEXITY_LABELS", "WIDTH", "ROW_HEIGHT", "RETURN_LABEL", "BAND_METHOD", "SUMMARY_METHOD", "Absent", "Drawn",
           "colour", "label", "in_order", "line_kw", "fmt_T", "seed_band", "new_figure", "figure_legend", "save"]
