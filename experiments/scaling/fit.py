"""Each metric against log10 training compute: a line, bootstrap intervals, extrapolation.

``fit_line`` fits ``value = intercept + slope * log10(train_flops)`` by least squares over every
(level, seed) point and puts 95% percentile intervals on both parameters by a paired bootstrap
of the points (``scipy.stats.bootstrap``). ``crossing`` extrapolates where the line reaches a
target (0.5 and 0.9 for the continuation ratio), with the interval taken from the same bootstrap
replicates -- but only when the slope's interval lies above zero; otherwise the plain statement
that the fit is flat or falling and that no extrapolation is warranted. Pure functions.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
#: A crossing further than this past the largest level measured is not stated as a number: a line
#: in log compute fitted over ~2-3 OOMs says nothing that far out.
MAX_EXTRAPOLATION_OOMS = 3.0


def _line(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    """Least-squares (intercept, slope) along ``axis`` (vectorised over bootstrap replicates)."""
    xm, ym = x.mean(axis=axis, keepdims=True), y.mean(axis=axis, keepdims=True)
    sxx = ((x - xm) ** 2).sum(axis=axis)
    sxy = ((x - xm) * (y - ym)).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.where(sxx > 0, sxy / np.where(sxx > 0, sxx, 1.0), np.nan)
    intercept = ym.squeeze(axis) - slope * xm.squeeze(axis)
    return np.stack([intercept, slope])


def fit_line(log10_compute: Sequence[float], values: Sequence[float], *, resamples: int = 2000,
             seed: int = 0) -> dict[str, Any]:
    """The fit of ``values`` against ``log10_compute`` with bootstrap intervals on its parameters."""
    x = np.asarray(log10_compute, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    out: dict[str, Any] = {"n_points": int(x.size), "n_levels": int(np.unique(x).size)}
    if x.size < 3 or np.unique(x).size < 2:
        out.update({"intercept": None, "slope": None, "intercept_ci": None, "slope_ci": None,
                    "note": "fewer than 3 points on 2 compute levels: no fit"})
        return out
    a, b = _line(x, y)
    res = stats.bootstrap((x, y), _line, paired=True, vectorized=True, n_resamples=int(resamples),
                          confidence_level=CONFIDENCE, method="percentile", rng=np.random.default_rng(seed))
    lo, hi = res.confidence_interval
    resid = y - (a + b * x)
    out.update({"intercept": float(a), "slope": float(b),
                "intercept_ci": [float(lo[0]), float(hi[0])], "slope_ci": [float(lo[1]), float(hi[1])],
                "residual_sd": float(resid.std(ddof=2)) if x.size > 2 else None,
                "log10_compute_range": [float(x.min()), float(x.max())],
                "_replicates": res.bootstrap_distribution})
    return out


def crossing(fit: dict[str, Any], target: float) -> dict[str, Any]:
    """log10 training compute at which the fitted line reaches ``target``, with its interval."""
    if fit.get("slope") is None:
        return {"target": target, "warranted": False, "statement": "no fit: no extrapolation"}
    lo_s = fit["slope_ci"][0]
    x_max = fit["log10_compute_range"][1]
    reached_now = fit["intercept"] + fit["slope"] * x_max >= target
    if lo_s <= 0:
        return {"target": target, "warranted": False,
                "statement": (f"the slope's {CONFIDENCE:.0%} interval [{fit['slope_ci'][0]:.3g}, {fit['slope_ci'][1]:.3g}] "
                              "per decade of compute includes zero or lies below it: the fit is flat or falling and "
                              "no extrapolation is warranted")}
    a, b = fit["_replicates"]
    with np.errstate(divide="ignore", invalid="ignore"):
        x_rep = np.where(b > 0, (target - a) / b, np.inf)
    x_hat = (target - fit["intercept"]) / fit["slope"]
    if x_hat - x_max > MAX_EXTRAPOLATION_OOMS:
        return {"target": target, "warranted": False, "log10_compute_unwarranted": float(x_hat),
                "statement": (f"the line rises (slope {fit['slope']:.3g} per decade) but would reach {target:g} only "
                              f"{x_hat - x_max:.1f} OOMs past the largest level measured, more than "
                              f"{MAX_EXTRAPOLATION_OOMS:g}: too far past the data for the fit to say")}
    q = (1 - CONFIDENCE) / 2
    lo, hi = np.quantile(x_rep, [q, 1 - q])
    return {"target": target, "warranted": True, "log10_compute": float(x_hat),
            "log10_compute_ci": [float(lo), float(hi) if np.isfinite(hi) else None],
            "ooms_beyond_largest": float(x_hat - x_max), "reached_in_range": bool(reached_now),
            "statement": (f"the line reaches {target:g} at 10^{x_hat:.2f} FLOPs ("
                          + ("within the range measured" if reached_now else f"{x_hat - x_max:+.2f} OOMs past the largest level measured")
                          + f"; {CONFIDENCE:.0%} interval 10^{lo:.2f} to "
                          + (f"10^{hi:.2f})" if np.isfinite(hi) else "unbounded)"))}


#: how far past the largest level the fit's band is drawn (OOMs): the extrapolation the figure shows
BAND_EXTENSION = 3.0


def band(fit: dict[str, Any], points: int = 41) -> dict[str, list[float]] | None:
    """The fitted line and its pointwise 95% band (percentiles of the bootstrap lines) on a grid
    from the smallest level to ``BAND_EXTENSION`` OOMs past the largest."""
    if fit.get("slope") is None:
        return None
    lo_x, hi_x = fit["log10_compute_range"]
    grid = np.linspace(lo_x, hi_x + BAND_EXTENSION, points)
    a, b = fit["_replicates"]
    lines = a[:, None] + b[:, None] * grid[None, :]
    q = (1 - CONFIDENCE) / 2
    low, high = np.quantile(lines, [q, 1 - q], axis=0)
    return {"log10_compute": [float(v) for v in grid], "fit": [float(fit["intercept"] + fit["slope"] * v) for v in grid],
            "low": [float(v) for v in low], "high": [float(v) for v in high]}


def fits(rows: list[dict[str, Any]], resamples: int, continuation: tuple[str, ...], targets: tuple[float, ...]) -> dict[str, dict[str, Any]]:
    """Per rung and metric of ``rows`` (dicts with rung, metric, train_flops, value): the line
    against log10 train_flops, its band, the level means, and for the ``continuation`` metrics
    where it reaches each of ``targets``."""
    out: dict[str, dict[str, Any]] = {}
    for rung in sorted({r["rung"] for r in rows}):
        out[rung] = {}
        for metric in sorted({r["metric"] for r in rows if r["rung"] == rung}):
            pts = [r for r in rows if r["rung"] == rung and r["metric"] == metric]
            f = fit_line([math.log10(r["train_flops"]) for r in pts], [r["value"] for r in pts],
                         resamples=resamples, seed=0)
            entry = public(f)
            entry["band"] = band(f)
            entry["level_means"] = [
                {"train_flops": c, "mean": float(np.mean([r["value"] for r in pts if r["train_flops"] == c])),
                 "n": sum(r["train_flops"] == c for r in pts)}
                for c in sorted({r["train_flops"] for r in pts})]
            if metric in continuation:
                entry["crossings"] = [crossing(f, t) for t in targets]
            out[rung][metric] = entry
    return out


def public(fit: dict[str, Any]) -> dict[str, Any]:
    """The fit without its bootstrap replicates (what goes into fit.json)."""
    return {k: v for k, v in fit.items() if not k.startswith("_")}


__all__ = ["CONFIDENCE", "MAX_EXTRAPOLATION_OOMS", "BAND_EXTENSION", "fit_line", "crossing", "band", "fits", "public"]
