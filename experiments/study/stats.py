"""The study's one interval method: a stratified percentile bootstrap (``scipy.stats.bootstrap``).

A metric of a (rung, imitator, question, variant, T) is measured on every test task for every
seed: a ``[seeds, tasks]`` matrix of per-task components. The bootstrap resamples seeds
*within each task* (the tasks are the strata, as in ``rliable``'s stratified bootstrap) — scipy
does exactly that when every task's column is passed as its own sample — and recomputes the
statistic: the mean over all (seed, task) values, or, for a ratio metric, the ratio of the
summed numerators to the summed denominators (numerator and denominator of a (seed, task)
always resampled together: the samples scipy resamples are seed indices).

``iqm`` is the interquartile mean of the per-(seed, task) values (Agarwal et al. 2021), given
beside the mean for normalised scores.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats


def _statistic(kind: str, num: np.ndarray, den: np.ndarray | None):
    n_tasks = num.shape[1]
    cols = np.arange(n_tasks)

    def stat(*idx: np.ndarray, axis: int = -1) -> np.ndarray:
        # idx[j]: resampled seed indices of task j, shape [..., n_seeds] (vectorised batches first)
        picks = np.stack([np.asarray(i, dtype=np.int64) for i in idx], axis=-1)  # [..., n_seeds, n_tasks]
        a = num[picks, cols]
        if kind == "ratio":
            b = den[picks, cols]
            s = b.sum(axis=(-2, -1))
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(s != 0, a.sum(axis=(-2, -1)) / s, np.nan)
        return a.mean(axis=(-2, -1))

    return stat


def interval(kind: str, num: np.ndarray, den: np.ndarray | None = None, *, resamples: int = 10_000,
             seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """(point estimate, low, high) of a ``[seeds, tasks]`` metric (see the module docstring).

    With one seed there is nothing to resample: the interval is (nan, nan)."""
    num = np.asarray(num, float)
    den = None if den is None else np.asarray(den, float)
    if kind == "ratio":
        s = den.sum()
        point = float(num.sum() / s) if s != 0 else float("nan")
    else:
        point = float(num.mean())
    n_seeds = num.shape[0]
    if n_seeds < 2 or not np.isfinite(point):
        return point, float("nan"), float("nan")
    samples = tuple(np.arange(n_seeds) for _ in range(num.shape[1]))
    res = stats.bootstrap(samples, _statistic(kind, num, den), n_resamples=resamples, confidence_level=level,
                          method="percentile", vectorized=True, paired=False, random_state=np.random.default_rng(seed))
    lo, hi = res.confidence_interval
    return point, float(lo), float(hi)


def iqm(values: Any) -> float:
    """Interquartile mean: the mean of the middle 50% (``scipy.stats.trim_mean`` at 25%)."""
    v = np.asarray(values, float).ravel()
    return float(stats.trim_mean(v, 0.25)) if v.size else float("nan")


__all__ = ["interval", "iqm"]
