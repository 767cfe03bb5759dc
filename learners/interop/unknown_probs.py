"""Histories whose teacher action probabilities are not known (imported from a dataset that only
logged the actions taken).

Such a history still needs a valid ``teacher_probs`` column (every reader assumes one), so it
holds a placeholder -- the one-hot distribution of the action taken, never NaN -- and its
metadata says so: ``teacher_probs_known: False`` and where it came from. Anything that needs the
teacher's distribution (KL to the teacher, the probability-weighted targets of a transformer)
calls ``require_teacher_probs`` first and refuses instead of scoring against the placeholder.
Scores of the actions alone (log-loss of the action taken, mixtures conditioned on actions) stay
valid.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from learners import HistoryError

KNOWN_KEY = "teacher_probs_known"
PLACEHOLDER_KEY = "teacher_probs_placeholder"
PLACEHOLDER = "one-hot of the action taken"


def teacher_probs_known(history: Any) -> bool:
    """False when the history's metadata marks its ``teacher_probs`` as a placeholder."""
    return history.metadata.get(KNOWN_KEY, True) is not False


def require_teacher_probs(history: Any, what: str) -> None:
    """Raise ``HistoryError`` if ``what`` (e.g. "teacher_forced") would read placeholder probabilities."""
    if teacher_probs_known(history):
        return
    src = history.metadata.get("source", {})
    origin = src.get("path") or src.get("dataset_id") if isinstance(src, dict) else None
    raise HistoryError(
        f"{what} needs the teacher's action probabilities, but this history has none"
        f"{f' (imported from {origin})' if origin else ''}: its teacher_probs column is a placeholder "
        f"({history.metadata.get(PLACEHOLDER_KEY, PLACEHOLDER)}). Score the actions taken instead "
        "(log-loss, a mixture's posterior), or record the teacher with its distribution.")


def placeholder_probs(action: np.ndarray, n_actions: int) -> np.ndarray:
    """The placeholder column: one-hot rows of the actions taken (float64, sums to 1, > 0 where taken)."""
    action = np.asarray(action, dtype=np.int64)
    p = np.zeros((len(action), int(n_actions)))
    p[np.arange(len(action)), action] = 1.0
    return p


__all__ = ["KNOWN_KEY", "PLACEHOLDER_KEY", "PLACEHOLDER", "teacher_probs_known", "require_teacher_probs",
           "placeholder_probs"]
