"""Reductions over the action axis of action-major arrays ``x[A, n]``, in numpy's and BLAS's order.

numpy's reduce over a short inner axis costs ~50 ns per row, so these run over the A contiguous
rows instead. The sums reproduce numpy's own 1-d summation order (sequential below 8 terms,
8-way pairwise from 8 to 128) and BLAS ddot's (sequential below 16 terms), so that sums over
the actions of one row are bit-identical to the teachers' ``z.sum()`` and ``probs @ Q[s]``.
"""
from __future__ import annotations

import numpy as np


def amax(x: np.ndarray) -> np.ndarray:
    m = x[0].copy()
    for a in range(1, x.shape[0]):
        np.maximum(m, x[a], out=m)
    return m


def asum(x: np.ndarray) -> np.ndarray:
    n = x.shape[0]
    if n < 8:
        out = x[0] + 0.0
        for a in range(1, n):
            out += x[a]
        return out
    if n > 128:
        return np.ascontiguousarray(x.T).sum(axis=1)
    r = [x[j].copy() for j in range(8)]
    i = 8
    while i < n - (n % 8):
        for j in range(8):
            r[j] += x[i + j]
        i += 8
    out = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
    for k in range(i, n):
        out += x[k]
    return out


def adot(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Column-wise dot products sum_a p[a] q[a] in ddot's order."""
    n = p.shape[0]
    if n < 16:
        out = p[0] * q[0]
        for a in range(1, n):
            out += p[a] * q[a]
        return out
    return np.matmul(np.ascontiguousarray(p.T)[:, None, :], np.ascontiguousarray(q.T)[:, :, None])[:, 0, 0]


def wsum(p: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``p @ w`` for p [A, n], without BLAS: multi-threaded OpenBLAS calls on vectors this size
    cost 10x more than the arithmetic on a shared 2-core machine."""
    return (p * w[None, :]).sum(axis=1)


def acount(mask: np.ndarray) -> np.ndarray:
    c = mask[0].astype(np.int64)
    for a in range(1, mask.shape[0]):
        c += mask[a]
    return c
