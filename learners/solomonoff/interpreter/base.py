"""What the engines share: the backend choice, the smoothed log, the compiled entry points, and
the base class of engines whose hypotheses' action distributions are explicit rows."""
from __future__ import annotations

import numpy as np

from learners.solomonoff.interpreter.reductions import wsum

try:
    from learners.solomonoff import kernels
except ImportError:  # numba missing: the numpy path does the same work, ~5x slower
    kernels = None
BACKENDS = ("numba", "numpy")
#: The backend of engines built without one (tests set it to "numpy" to build reference mixtures).
DEFAULT_BACKEND = "numba" if kernels is not None else "numpy"


def resolve_backend(backend: str | None) -> str:
    if backend is None:
        return DEFAULT_BACKEND
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "numba" and kernels is None:
        raise ImportError("backend 'numba' needs numba (pip install numba)")
    return backend


def smooth_log(p: np.ndarray, smoothing: float, n_actions: int) -> np.ndarray:
    """``log((1 - smoothing) p + smoothing / A)``: no action is impossible under any hypothesis."""
    with np.errstate(divide="ignore"):
        return np.log((1.0 - smoothing) * p + smoothing / n_actions)


class Compiled:
    """The compiled entry points the mixture calls, over one pass ``_pass(a, lw, M, do_mix,
    do_evidence) -> (Z, mix, max lw after)`` (engines with ``backend == "numba"``)."""

    def mix_logw(self, lw: np.ndarray, M: float) -> tuple[float, np.ndarray]:
        """(Z, sum_v w_v p_v) with w = exp(lw - M), over every row, at the prepared state."""
        Z, pred, _ = self._pass(0, lw, M, True, False)
        return Z, pred

    def add_loglik(self, a: int, lw: np.ndarray) -> float:
        """lw += every row's smoothed log-probability of action a; returns max(lw)."""
        return self._pass(a, lw, 0.0, False, True)[2]

    def mix_and_evidence(self, a: int, lw: np.ndarray, M: float) -> tuple[float, np.ndarray, float]:
        """``mix_logw`` then ``add_loglik`` in one pass: (Z, mix before the evidence, max(lw) after)."""
        return self._pass(a, lw, M, True, True)



class RowEngine(Compiled):
    """An engine whose hypotheses' raw action distributions at the prepared state are explicit
    rows ``_p [n, A]``: mixing, log-likelihoods and the compiled pass (``_rows()``: the rows and
    their smoothed logs, action-major) are the same for all of them."""

    backend = "numpy"
    A: int
    n: int
    smoothing: float
    _p: np.ndarray

    def reset(self) -> None:
        pass

    def prepare(self, s: int) -> None:
        pass

    def advance(self, s: int, a: int, r: float, s2: int, terminated: bool, truncated: bool) -> None:
        pass

    def all_probs(self) -> np.ndarray:
        return self._p

    def all_probs_am(self) -> np.ndarray:
        return np.ascontiguousarray(self.all_probs().T)

    def mix(self, w: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        return wsum((self._p if idx is None else self._p[idx]).T, w)

    def loglik(self, a: int) -> np.ndarray:
        return smooth_log(self._p[:, a], self.smoothing, self.A)

    def _rows(self) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError(f"{type(self).__name__} has no compiled pass")

    def _pass(self, a: int, lw: np.ndarray, M: float, do_mix: bool, do_evidence: bool) -> tuple[float, np.ndarray, float]:
        PT, logpT = self._rows()            # action-major [A, n]
        pred = np.zeros(self.A)
        W = getattr(self, "_W", None)
        if W is None or W.size != self.n:
            W = self._W = np.empty(self.n)
        Z, mx = kernels.rows_mix_evidence(PT, lw, M, a, self.smoothing, do_mix, do_evidence, pred,
                                           logpT[a] if logpT.size else np.zeros(0), W)
        return Z, pred, mx

