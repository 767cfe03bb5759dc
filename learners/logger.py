"""Training curves: one CSV of scalars (``step,name,value,wall_time``, one row per scalar) and,
when the optional ``tensorboard`` package is installed, the same scalars as TensorBoard events.
Names follow CleanRL's (``charts/...``, ``losses/...``).

``MetricsLogger(path, resume_step=t)`` continues a log after a resume: rows past step ``t`` (those
a killed run wrote after its last checkpoint) are dropped, so a resumed log equals an unkilled one.
"""
from __future__ import annotations

import csv
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping

import numpy as np

HEADER = ["step", "name", "value", "wall_time"]


class MetricsLogger:
    """Append scalars to a CSV (line-buffered: every row written before a checkpoint is on disk
    if the run is killed) and to TensorBoard when ``tensorboard_dir`` is given and it is installed."""

    def __init__(self, csv_path: str | os.PathLike, *, tensorboard_dir: str | os.PathLike | None = None,
                 resume_step: int | None = None):
        self.path = Path(csv_path)
        if resume_step is not None and self.path.exists():
            with open(self.path, newline="") as f:
                rows = list(csv.reader(f))
            keep = [HEADER] + [r for r in rows[1:] if len(r) == len(HEADER) and int(r[0]) <= resume_step]
            with open(self.path, "w", newline="") as f:
                csv.writer(f).writerows(keep)
            self._f = open(self.path, "a", newline="", buffering=1)
        else:
            self._f = open(self.path, "w", newline="", buffering=1)
            self._f.write(",".join(HEADER) + "\n")
        self._w = csv.writer(self._f)
        self._tb = None
        if tensorboard_dir is not None:
            # Imported here, not at the top: torch.utils.tensorboard imports torch (~2 s), which
            # tabular teachers that log never need. TensorBoard is an optional extra
            # (hypospace[tensorboard]); without it the CSV is the log.
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                SummaryWriter = None
            if SummaryWriter is not None:
                self._tb = SummaryWriter(str(tensorboard_dir), purge_step=resume_step)

    def scalar(self, step: int, name: str, value: float) -> None:
        self._w.writerow([int(step), name, repr(float(value)), f"{time.time():.3f}"])
        if self._tb is not None:
            self._tb.add_scalar(name, float(value), int(step))

    def scalars(self, step: int, values: Mapping[str, float | None]) -> None:
        """Several scalars at one step (``None`` values are skipped)."""
        for name, v in values.items():
            if v is not None:
                self.scalar(step, name, v)

    def close(self) -> None:
        self._f.close()
        if self._tb is not None:
            self._tb.close()

    def __enter__(self) -> "MetricsLogger":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def read_metrics(csv_path: str | os.PathLike) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{name: (steps, values)}`` of a log written by ``MetricsLogger``."""
    steps: dict[str, list[int]] = defaultdict(list)
    values: dict[str, list[float]] = defaultdict(list)
    with open(csv_path, newline="") as f:
        for r in csv.DictReader(f):
            steps[r["name"]].append(int(r["step"]))
            values[r["name"]].append(float(r["value"]))
    return {k: (np.array(steps[k], np.int64), np.array(values[k])) for k in steps}


__all__ = ["MetricsLogger", "read_metrics", "HEADER"]
