"""A synthetic scaling sweep in the format of ``python -m experiments.scaling`` (fit.json and
scaling.csv), for the paper's tests: one rung whose continuation ratio rises with compute and
one on which it is flat. The fit is the sweep's own (``experiments.scaling.fit.fits``)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from experiments.scaling.fit import fits

COLUMNS = ("rung", "params", "train_flops", "flops_per_token", "metric", "seed", "value")
METRICS = ("Q2_beyond_continuation_ratio", "Q2_within_continuation_ratio", "Q3_heldout_auc_ratio", "Q1_kl_bits_late")


def synthetic_rows(seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for rung, rise in (("rising", 0.15), ("flat", 0.0)):
        for i, (params, flops) in enumerate(((3440, 4e10), (14688, 3e11), (25728, 9e11), (85296, 4e12), (200576, 1.3e13))):
            x = np.log10(flops)
            for s in range(3):
                for metric in METRICS:
                    base = {"Q1_kl_bits_late": 1.5 - 0.1 * x}.get(metric, -1.2 + rise * x if rise else 0.1)
                    rows.append({"rung": rung, "params": params, "train_flops": flops, "flops_per_token": 6.0 * params,
                                 "metric": metric, "seed": s, "value": round(float(base + rng.normal(0, 0.03)), 6)})
    return rows


def write_synthetic_scaling(directory: str | Path, seed: int = 0) -> Path:
    d = Path(directory)
    d.mkdir(parents=True)
    rows = synthetic_rows(seed)
    with open(d / "scaling.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(COLUMNS)
        for r in rows:
            w.writerow([r[c] for c in COLUMNS])
    doc = {"format": "hypospace.scaling/1",
           "config": {"preset": "synthetic", "train_seeds": 3, "rungs": ["rising", "flat"]},
           "model": "value = intercept + slope * log10(train_flops) (synthetic)",
           "fits": fits(rows, 500, METRICS[:2], (0.5, 0.9)),
           "compute_beside": {r: {"T": 50, "k": 4, "steps_per_q2_run": 200,
                                  "teacher": {"rule": "bandit_mean", "flops_per_step": 10.0, "flops_per_q2_run": 2000.0},
                                  "mixture": {"flops_per_q2_run": 1.0e6, "continuation_ratio_mean": 0.9},
                                  "transformer_top_level": {"train_flops": 1.3e13, "forward_flops_per_q2_run": 9.0e7}}
                              for r in ("rising", "flat")},
           "provenance": {"commit": "0000000synthetic", "command": "python -m experiments.paper.synthetic_scaling"}}
    (d / "fit.json").write_text(json.dumps(doc, indent=1))
    return d


__all__ = ["write_synthetic_scaling", "synthetic_rows"]
