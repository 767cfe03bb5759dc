"""Compiled (numba) kernels of ``TDEngine``'s hot path: one pass over the variants per step
(predictive mix, weights, log-likelihoods) and one pass over the value tables per update.

The numpy implementation in ``interpreter/`` does the same work as a dozen array passes
(~50 ns per hypothesis-step: each pass re-reads arrays of 10^5 elements and writes a
temporary); here each program is visited once per pass with its values in registers. The
floating-point operations of the TD updates and action rules are the numpy path's (and so the
teachers'), operation for operation, in the same order, with two exceptions that stay within
a few ulp and are covered by the 1e-12 tests:

* ``exp`` is ``vexp`` below (branch-free, so loops over it vectorise; <= 1 ulp, against
  numpy's own SIMD exp that is within 1 ulp too);
* a posterior weight ``exp(logw - M)`` below ``e^-708`` is 0 (numpy's underflows to 0 below
  ``e^-745``; in between it is a subnormal, < 1e-307 of the best weight, which is 1).

No fastmath: no reassociation, no fused multiply-add contraction. All kernels release the GIL
(``nogil``), so the mixture's worker threads (one TD engine shard each) run them in parallel.
Compiled on first use and cached beside this file (``cache=True``).

One file for one job, the interpreter's compiled passes: the kernels share the ``vexp``
intrinsic and small inlined helpers (argmax sets as bit masks, ordered sums), and numba inlines
and caches per module, so splitting them would cost either duplicated helpers or cross-module
calls on the hot path.
"""
from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

_JIT = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")


@intrinsic
def _f2i(typingctx, x):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(64))
    return types.int64(types.float64), codegen


@intrinsic
def _i2f(typingctx, x):
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen


@intrinsic
def _fma(typingctx, a, b, c):
    """a * b + c with one rounding (llvm.fma: a vector FMA where the loop vectorises)."""
    def codegen(context, builder, sig, args):
        d = ir.DoubleType()
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(d, [d, d, d]), "llvm.fma.f64")
        return builder.call(fn, args)
    return types.float64(types.float64, types.float64, types.float64), codegen


_INV_LN2 = 1.4426950408889634
_SHIFT = 6755399441055744.0            # 1.5 * 2^52: adding it rounds to an integer, kept in the low bits
_LN2_HI = 0.6931471803691238           # 0x3fe62e42fee00000 (k * LN2_HI is exact for |k| < 2^11)
_LN2_LO = 1.9082149292705877e-10       # ln 2 - LN2_HI
_C = [1.0 / math.factorial(k) for k in range(14)]
_C2, _C3, _C4, _C5, _C6, _C7, _C8, _C9, _C10, _C11, _C12, _C13 = _C[2:]


@njit(inline="always", **_JIT)
def vexp(x):
    """exp(x) to <= 1 ulp for x <= 709, 0 below -708 (subnormal results are flushed).

    x = k ln2 + r with |r| <= ln2/2 (Cody-Waite, ln2 in two parts), exp(r) by its Taylor
    polynomial of degree 13 (truncation < 4e-18 relative) in fused multiply-adds, times 2^k
    built in the exponent bits."""
    n = _fma(x, _INV_LN2, _SHIFT)
    kd = n - _SHIFT
    ki = _f2i(n)
    r = _fma(kd, -_LN2_LO, _fma(kd, -_LN2_HI, x))
    p = _fma(_C13, r, _C12)
    p = _fma(p, r, _C11)
    p = _fma(p, r, _C10)
    p = _fma(p, r, _C9)
    p = _fma(p, r, _C8)
    p = _fma(p, r, _C7)
    p = _fma(p, r, _C6)
    p = _fma(p, r, _C5)
    p = _fma(p, r, _C4)
    p = _fma(p, r, _C3)
    p = _fma(p, r, _C2)
    p = _fma(p * r, r, r) + 1.0
    y = p * _i2f((ki + 1023) << 52)
    return 0.0 if x < -708.0 else y


# fdlibm's log(1+f) polynomial in s = f/(2+f) (minimax for |s| <= 0.1716)
_LG1, _LG2, _LG3 = 6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01
_LG4, _LG5, _LG6, _LG7 = 2.222219843214978396e-01, 1.818357216161805012e-01, 1.531383769920937332e-01, 1.479819860511658591e-01
_SQRT_HALF_BITS = 0x3FE6A09E667F3BCD


@njit(inline="always", **_JIT)
def vlog(x):
    """log(x) to <= 1 ulp for positive normal x (branch-free, so loops over it vectorise).

    x = 2^k m with m in [sqrt(1/2), sqrt(2)) (from the bits), f = m - 1, and
    log(1 + f) = f - (hfsq - s (hfsq + R(s^2))), hfsq = f^2 / 2, as in fdlibm's e_log.c."""
    bits = _f2i(x)
    k = (bits - _SQRT_HALF_BITS) >> 52
    m = _i2f(bits - (k << 52))
    f = m - 1.0
    kd = float(k)
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (_LG2 + w * (_LG4 + w * _LG6))
    t2 = z * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7)))
    R = t2 + t1
    hfsq = 0.5 * f * f
    return kd * _LN2_HI - ((hfsq - (s * (hfsq + R) + kd * _LN2_LO)) - f)


@njit(**_JIT)
def vexp_array(x, out):
    for i in range(x.size):
        out[i] = vexp(x[i])


@njit(**_JIT)
def vlog_array(x, out):
    for i in range(x.size):
        out[i] = vlog(x[i])


# Sums whose order does not matter (the predictive mix: a sum over hypotheses, in no specified
# order). Reassociation lets them vectorise; nothing else is compiled with it.
@njit(cache=True, nogil=True, fastmath={"reassoc", "nsz"})
def _sum(x):
    acc = 0.0
    for i in range(x.size):
        acc += x[i]
    return acc


@njit(cache=True, nogil=True, fastmath={"reassoc", "nsz"})
def _dot(x, y):
    acc = 0.0
    for i in range(x.size):
        acc += x[i] * y[i]
    return acc


@njit(cache=True, nogil=True, fastmath={"reassoc", "nsz"})
def _sum_if_bit(G, IDX, bit, m):
    """sum of G[i] over i < m with ``bit`` set in IDX[i] (a mix term: order free)."""
    acc = 0.0
    for i in range(m):
        acc += G[i] if (IDX[i] & bit) != 0 else 0.0
    return acc


@njit(cache=True, nogil=True, fastmath={"reassoc", "nsz"})
def _sum_if_eq(Xb, MX, G, m):
    """sum of G[i] over i < m with Xb[i] == MX[i] (a mix term: order free)."""
    acc = 0.0
    for i in range(m):
        acc += G[i] if Xb[i] == MX[i] else 0.0
    return acc


@njit(**_JIT)
def _weights(lw, M, W):
    """W[i] = exp(lw[i] - M)."""
    for i in range(lw.size):
        W[i] = vexp(lw[i] - M)


@njit(**_JIT)
def _lwmax(lw, cur):
    for i in range(lw.size):
        x = lw[i]
        cur = x if x > cur else cur
    return cur



# ------------------------------------------------------------------------------------------
# Variants: predictive mix, posterior weights and log-likelihoods at state s
# ------------------------------------------------------------------------------------------
# One kernel per action rule; each is one pass over that rule's rows (engine rows are grouped by
# rule and sorted by table). ``do_mix``: weights w = exp(lw - M) (before the evidence); add
# sum_v w_v p_v (raw, unsmoothed probabilities) into ``pred`` and return Z = sum_v w_v.
# ``do_evidence``: lw += the smoothed log-probability log((1 - sm) p_v(a) + sm / A). Every
# kernel returns (Z, max lw after).
#
# Rows go in blocks of B = ``W.size``: the block's values Q(s, b, table) are gathered into the
# rows of ``X`` [A, B] first; everything after that (maxima, exps, logs, sums) runs over
# contiguous rows, which LLVM vectorises. Loops index views from 0 (numba cannot prove an
# offset index non-negative, and its wrap-around check stops vectorisation); table indices are
# unsigned for the same reason.

@njit(**_JIT)
def _gather(Q, s, vt, X):
    A = Q.shape[1]
    m = vt.size
    for b in range(A):
        Qb = Q[s, b]
        Xb = X[b]
        for i in range(m):
            Xb[i] = Qb[vt[i]]


@njit(**_JIT)
def _rowmax(X, m, MX):
    A = X.shape[0]
    X0 = X[0]
    for i in range(m):
        MX[i] = X0[i]
    for b in range(1, A):
        Xb = X[b]
        for i in range(m):
            x = Xb[i]
            MX[i] = x if x > MX[i] else MX[i]


@njit(**_JIT)
def _rowcount(X, m, MX, CNT):
    """CNT[i] = |{b: X[b, i] = MX[i]}| (as a float)."""
    A = X.shape[0]
    for i in range(m):
        CNT[i] = 0.0
    for b in range(A):
        Xb = X[b]
        for i in range(m):
            CNT[i] += 1.0 if Xb[i] == MX[i] else 0.0


@njit(**_JIT)
def _rowsum(X, m, SZ):
    """SZ[i] = sum_b X[b, i] in order (as numpy sums fewer than 8 terms: x0 + 0.0 + x1 + ...)."""
    A = X.shape[0]
    X0 = X[0]
    for i in range(m):
        SZ[i] = X0[i] + 0.0
    for b in range(1, A):
        Xb = X[b]
        for i in range(m):
            SZ[i] += Xb[i]


@njit(**_JIT)
def _mix_argmax(X, m, MX, G, pred):
    """pred[b] += sum_i G[i] [X[b, i] = MX[i]]."""
    A = X.shape[0]
    for b in range(A):
        pred[b] += _sum_if_eq(X[b], MX, G, m)


@njit(**_JIT)
def table_stats(Q, s, lo, hi, MX, CNT, MASK):
    """Per value table t in [lo, hi) at state s: MX[t] = max_b Q(s, b, t), CNT[t] = |argmax|
    (a float) and MASK[t] = the argmax set as bits, in one pass over the rows Q[s, b, lo:hi]
    (tables are contiguous: no gathering)."""
    A = Q.shape[1]
    n = hi - lo
    Q0, mx, cnt, mk = Q[s, 0, lo:hi], MX[lo:hi], CNT[lo:hi], MASK[lo:hi]
    for i in range(n):
        mx[i] = Q0[i]
        cnt[i] = 1.0
        mk[i] = 1
    for b in range(1, A):
        Qb = Q[s, b, lo:hi]
        bit = 1 << b                       # (stored in MASK's width: A <= 8 * itemsize)
        for i in range(n):
            x = Qb[i]
            m = mx[i]
            gt = x > m
            eq = x == m
            cnt[i] = 1.0 if gt else (cnt[i] + 1.0 if eq else cnt[i])
            mk[i] = bit if gt else (mk[i] | bit if eq else mk[i])
            mx[i] = x if gt else m


@njit(**_JIT)
def td_variants_eps(a, vt, TCNT, TMASK, lut, lut_row, eps, first, lw, M, do_mix, do_evidence, pred, W, MX, CNT, G, IDX):
    """eps-greedy rows (greedy is eps = 0): p_b = eps/A + ((1 - eps) [q_b = max]) / |argmax|, from
    the tables' argmax sets (``table_stats``); rows with ``first[i]`` break ties to the first
    index (the argmax set is its lowest bit, of size 1). The log-likelihood comes from ``lut``
    (per eps value, ``lut_row``, by the size of the argmax set if a is in it, else 0): the
    values ``_smooth_log`` gives for those probabilities."""
    A = pred.size
    B = W.size
    n = vt.size
    Z = 0.0
    Ez = 0.0
    newmax = -np.inf
    abit = 1 << a
    for blo in range(0, n, B):
        m = min(B, n - blo)
        lwb, rowb, vtb, fb = lw[blo:blo + m], lut_row[blo:blo + m], vt[blo:blo + m], first[blo:blo + m]
        any_first = False
        for i in range(m):
            any_first = any_first or fb[i] != 0
        if any_first:
            for i in range(m):
                t = vtb[i]
                mk = np.uint64(TMASK[t])
                low = mk & (~mk + np.uint64(1))          # the lowest set bit: the first maximal action
                CNT[i] = 1.0 if fb[i] else TCNT[t]
                IDX[i] = low if fb[i] else mk
        else:   # (the plain grammar's rows: no per-row branch)
            for i in range(m):
                t = vtb[i]
                CNT[i] = TCNT[t]
                IDX[i] = TMASK[t]
        if do_mix:
            _weights(lwb, M, W)      # before the evidence
        if do_evidence:
            for i in range(m):
                k = np.uint64(CNT[i]) if (IDX[i] & abit) != 0 else np.uint64(0)
                lwb[i] += lut[rowb[i] + k]
        if do_mix:
            Wb = W[:m]
            Z += _sum(Wb)
            eb = eps[blo:blo + m]
            for i in range(m):
                G[i] = eb[i] / A
            Ez += _dot(Wb, G[:m])
            for i in range(m):
                G[i] = (W[i] * (1.0 - eb[i])) / CNT[i]
            for b in range(A):
                pred[b] += _sum_if_bit(G, IDX, 1 << b, m)
        newmax = _lwmax(lwb, newmax)
    if do_mix:
        for b in range(A):
            pred[b] += Ez
    return Z, newmax


@njit(**_JIT)
def td_variants_softmax(Q, s, a, vt, TMX, vpar, lw, M, do_mix, do_evidence, smoothing, pred, W, X, MX, SZ, G):
    """softmax rows: p_b = z_b / sum z, z_b = exp((q_b - max q) / T), summed in order (the max
    from ``table_stats``)."""
    A = Q.shape[1]
    B = W.size
    n = vt.size
    keep = 1.0 - smoothing
    uni = smoothing / A
    Z = 0.0
    newmax = -np.inf
    for blo in range(0, n, B):
        m = min(B, n - blo)
        lwb, tb, vtb = lw[blo:blo + m], vpar[blo:blo + m], vt[blo:blo + m]
        _gather(Q, s, vtb, X)
        for i in range(m):
            MX[i] = TMX[vtb[i]]
        for b in range(A):
            Xb = X[b]
            for i in range(m):
                Xb[i] = (Xb[i] - MX[i]) / tb[i]
            for i in range(m):
                Xb[i] = vexp(Xb[i])
        _rowsum(X, m, SZ)
        if do_mix:
            _weights(lwb, M, W)
            Z += _sum(W[:m])
            for i in range(m):
                G[i] = W[i] / SZ[i]
            for b in range(A):
                pred[b] += _dot(G[:m], X[b, :m])
        if do_evidence:
            Xa = X[a]
            for i in range(m):
                lwb[i] += vlog(keep * (Xa[i] / SZ[i]) + uni)
        newmax = _lwmax(lwb, newmax)
    return Z, newmax


@njit(**_JIT)
def td_variants_bonus(Q, s, a, vt, cbase, cdiv, cb_lut, lw, M, do_mix, do_evidence, pred, W, X, MX, CNT, G):
    """count-bonus rows: uniform on the argmax of u_b = c / sqrt(N(s, b) + 1) + q_b, with
    ``cdiv[cbase[v] + b]`` = c_v / sqrt(N_d(s, b) + 1) (d: the table's update timing)
    precomputed for this state. The log-likelihood comes from ``cb_lut`` by the argmax-set size
    (0 if a is not in it)."""
    A = Q.shape[1]
    B = W.size
    n = vt.size
    Z = 0.0
    newmax = -np.inf
    for blo in range(0, n, B):
        m = min(B, n - blo)
        lwb, cb = lw[blo:blo + m], cbase[blo:blo + m]
        _gather(Q, s, vt[blo:blo + m], X)
        for b in range(A):
            Xb = X[b]
            for i in range(m):
                Xb[i] = cdiv[cb[i] + np.uint64(b)] + Xb[i]
        _rowmax(X, m, MX)
        _rowcount(X, m, MX, CNT)
        if do_mix:
            _weights(lwb, M, W)
            Z += _sum(W[:m])
        if do_evidence:
            Xa = X[a]
            for i in range(m):
                lwb[i] += cb_lut[np.uint64(CNT[i]) if Xa[i] == MX[i] else np.uint64(0)]
        if do_mix:
            for i in range(m):
                G[i] = W[i] / CNT[i]
            _mix_argmax(X, m, MX, G, pred)
        newmax = _lwmax(lwb, newmax)
    return Z, newmax


# ------------------------------------------------------------------------------------------
# Tables: one TD update of Q[s, a, t] for every table t in [lo, hi)
# ------------------------------------------------------------------------------------------
# y = (cr r + c1) + gamma ((cm max_b Q(s2,b) + cn nq) + ce E), Q(s,a) += step (y - Q(s,a)),
# step = 1/n_new (``inv_count``) or alpha; nq = Q(s2, a2), or E when the next action is unknown
# (a2 < 0: the immediate update, or a deferred one cut by the end of an episode), as in
# ``TDEngine._update``. E = sum_b pi(b|s2) Q(s2,b) (summed over b in order) under the table's
# own policy, computed by the ``expect_*`` kernels into ``E[t - lo]`` for the tables that use it
# (0 elsewhere). Tables are contiguous in Q's last axis: the loops read Q[s2, b, lo:hi] rows.

@njit(**_JIT)
def _tload(Q, s2, blo, m, X):
    A = Q.shape[1]
    for b in range(A):
        Qb = Q[s2, b, blo:blo + m]
        Xb = X[b]
        for i in range(m):
            Xb[i] = Qb[i]


@njit(**_JIT)
def _rowdot(P, Y, m, E):
    """E[i] = sum_b P[b, i] Y[b, i], summed over b in order (as ``adot``: p0 q0 + p1 q1 + ...)."""
    A = P.shape[0]
    for b in range(A):
        Pb, Yb = P[b], Y[b]
        for i in range(m):
            pq = Pb[i] * Yb[i]
            if b == 0:
                E[i] = pq
            else:
                E[i] += pq


@njit(**_JIT)
def expect_eps(Q, s2, lo, hi, par, pfirst, E, X, MX, CNT, Y):
    """eps-greedy policy at s2: pi(b) = eps/A + ((1 - eps) [q_b = max]) / |argmax|; tables with
    ``pfirst`` give the greedy share 1 - eps to the first maximal action only."""
    A = Q.shape[1]
    B = MX.size
    for blo in range(lo, hi, B):
        m = min(B, hi - blo)
        pb_, fb, Eb = par[blo:blo + m], pfirst[blo:blo + m], E[blo - lo:blo - lo + m]
        _tload(Q, s2, blo, m, Y)
        _rowmax(Y, m, MX)
        _rowcount(Y, m, MX, CNT)
        for i in range(m):
            # the greedy share of each argmax action (first-index: all of it, to the first one)
            CNT[i] = (1.0 - pb_[i]) if fb[i] else (1.0 - pb_[i]) / CNT[i]
        for b in range(A):
            Xb, Yb = X[b], Y[b]
            for i in range(m):
                hit = Yb[i] == MX[i]
                Xb[i] = pb_[i] / A + (CNT[i] if hit else 0.0)
                if hit and fb[i]:
                    CNT[i] = 0.0                # later maximal actions get no greedy share
        _rowdot(X, Y, m, Eb)


@njit(**_JIT)
def expect_softmax(Q, s2, lo, hi, par, E, X, MX, SZ, Y):
    """softmax policy at s2: pi(b) = z_b / sum z, z_b = exp((q_b - max q) / T)."""
    A = Q.shape[1]
    B = MX.size
    for blo in range(lo, hi, B):
        m = min(B, hi - blo)
        tb, Eb = par[blo:blo + m], E[blo - lo:blo - lo + m]
        _tload(Q, s2, blo, m, Y)
        _rowmax(Y, m, MX)
        for b in range(A):
            Xb, Yb = X[b], Y[b]
            for i in range(m):
                Xb[i] = (Yb[i] - MX[i]) / tb[i]
            for i in range(m):
                Xb[i] = vexp(Xb[i])
        _rowsum(X, m, SZ)
        for b in range(A):
            Xb = X[b]
            for i in range(m):
                Xb[i] = Xb[i] / SZ[i]
        _rowdot(X, Y, m, Eb)


@njit(**_JIT)
def expect_bonus(Q, s2, lo, hi, cidx, cdiv, E, X, MX, CNT, Y):
    """count-bonus policy at s2: uniform on the argmax of Q(s2, b) + c / sqrt(N(s2, b) + 1);
    ``cdiv[cidx[t] * A + b]`` = c / sqrt(N(s2, b) + 1) for the table's c."""
    A = Q.shape[1]
    B = MX.size
    for blo in range(lo, hi, B):
        m = min(B, hi - blo)
        cb, Eb = cidx[blo:blo + m], E[blo - lo:blo - lo + m]
        _tload(Q, s2, blo, m, Y)
        for b in range(A):
            Xb, Yb = X[b], Y[b]
            for i in range(m):
                Xb[i] = Yb[i] + cdiv[cb[i] * np.uint64(A) + np.uint64(b)]
        _rowmax(X, m, MX)
        _rowcount(X, m, MX, CNT)
        for i in range(m):
            CNT[i] = 1.0 / CNT[i]            # the probability of each argmax action
        for b in range(A):
            Xb = X[b]
            for i in range(m):
                Xb[i] = CNT[i] if Xb[i] == MX[i] else 0.0
        _rowdot(X, Y, m, Eb)


@njit(**_JIT)
def td_update(Q, lo, hi, s, a, r, s2, terminated, a2, n_new, cr, c1, cm, cn, ce, gam, inv_count, alpha, E, X, MX):
    """Q(s, a, t) for t in [lo, hi). Reads of Q(s2, ., t) only where the target uses them: the
    max where cm != 0 in a block (tables are ordered so that such tables cluster), Q(s2, a2)
    where the next action is known."""
    B = MX.size
    inv_n = 1.0 / n_new
    for blo in range(lo, hi, B):
        m = min(B, hi - blo)
        sl = slice(blo, blo + m)
        crb, c1b, cmb, cnb, ceb, gb = cr[sl], c1[sl], cm[sl], cn[sl], ce[sl], gam[sl]
        icb, alb, Eb = inv_count[sl], alpha[sl], E[blo - lo:blo - lo + m]
        Qsa = Q[s, a, sl]
        if terminated:
            for i in range(m):
                y = (crb[i] * r + c1b[i]) + gb[i] * 0.0
                step = inv_n if icb[i] else alb[i]
                qa = Qsa[i]
                Qsa[i] = qa + step * (y - qa)
            continue
        need_max = False
        for i in range(m):
            need_max = need_max or cmb[i] != 0.0
        if need_max:
            _tload(Q, s2, blo, m, X)
            _rowmax(X, m, MX)
        else:
            for i in range(m):
                MX[i] = 0.0        # cm = 0 throughout: cm * max = 0 (max of finite values)
        Qn = Q[s2, a2 if a2 >= 0 else 0, sl]
        for i in range(m):
            e = Eb[i]
            nq = Qn[i] if a2 >= 0 else e
            boot = (cmb[i] * MX[i] + cnb[i] * nq) + ceb[i] * e
            y = (crb[i] * r + c1b[i]) + gb[i] * boot
            step = inv_n if icb[i] else alb[i]
            qa = Qsa[i]
            Qsa[i] = qa + step * (y - qa)


# ------------------------------------------------------------------------------------------
# One whole teacher step, table block by table block
# ------------------------------------------------------------------------------------------
@njit(**_JIT)
def _expect_range(Q, s2, lo, hi, kind, pi_param, pi_first, pcidx, cdiv, E, e_off, X, MX, CNT, Y):
    if hi <= lo:
        return
    Eb = E[lo - e_off:hi - e_off]
    if kind == 0:
        expect_eps(Q, s2, lo, hi, pi_param, pi_first, Eb, X, MX, CNT, Y)
    elif kind == 1:
        expect_softmax(Q, s2, lo, hi, pi_param, Eb, X, MX, CNT, Y)
    else:
        expect_bonus(Q, s2, lo, hi, pcidx, cdiv, Eb, X, MX, CNT, Y)


@njit(**_JIT)
def td_step_blocks(Q, s, a, tb_lo, tb_hi, TB,
                   TMX, TCNT, TMASK,
                   e_vt, e_lut, e_row, e_eps, e_first, e_lw, e_off,
                   s_vt, s_T, s_lw, s_off,
                   b_vt, b_cbase, b_cdiv, cb_lut, b_lw, b_off,
                   M, do_mix, do_evidence, smoothing, pred,
                   upd_i, upd_r, upd_e, upd_cdiv,
                   cr, c1, cm, cn, ce, gam, gam_trunc, inv_count, alpha, pi_param, pi_param_prev, pi_first, pcidx,
                   W, X, MX, CNT, G, IDX, E, Y):
    """Table blocks [tb_lo, tb_hi) of size TB: for each block, the argmax statistics of its tables
    at s, the mix (``do_mix``) and evidence (``do_evidence``) of the variants on those tables
    (rows ``*_off[k]:*_off[k+1]`` of each action rule), then the block's share of this step's TD
    updates (those marked active in ``upd_i``), in the order of ``TDEngine.advance``. A block's data stays in cache across all of it; blocks touch disjoint
    tables, so disjoint block ranges can run on different threads.

    ``upd_i[u]`` = (active, lo, hi, s, a, s2, terminated, a2, n_new, truncated) for the updates
    u = 0 (the pending deferred one), 1 (immediate), 2 (the deferred one at an episode's end); a
    truncated update discounts by ``gam_trunc`` (0 for tables that treat truncation as terminal);
    ``upd_r[u]`` its reward; ``upd_e[u, k]`` = the table range [lo, hi) whose E under policy
    kind k it needs; ``upd_cdiv[u]`` the count-bonus divisions at its s2. The pending update
    (u = 0) reads the policies' parameters of its own step, ``pi_param_prev`` (they differ from
    ``pi_param`` under a per-step epsilon schedule)."""
    nT = Q.shape[2]
    if E.size < TB or e_off.size <= tb_hi or s_off.size <= tb_hi or b_off.size <= tb_hi:
        raise ValueError("td_step_blocks: scratch or block offsets do not match the table block size")
    Z = 0.0
    newmax = -np.inf
    for k in range(tb_lo, tb_hi):
        t0 = k * TB
        t1 = min(nT, t0 + TB)
        if do_mix or do_evidence:
            table_stats(Q, s, t0, t1, TMX, TCNT, TMASK)
        r0, r1 = e_off[k], e_off[k + 1]
        if r1 > r0 and (do_mix or do_evidence):
            z, m = td_variants_eps(a, e_vt[r0:r1], TCNT, TMASK, e_lut, e_row[r0:r1], e_eps[r0:r1], e_first[r0:r1],
                                   e_lw[r0:r1], M, do_mix, do_evidence, pred, W, MX, CNT, G, IDX)
            Z += z
            newmax = max(newmax, m)
        r0, r1 = s_off[k], s_off[k + 1]
        if r1 > r0 and (do_mix or do_evidence):
            z, m = td_variants_softmax(Q, s, a, s_vt[r0:r1], TMX, s_T[r0:r1], s_lw[r0:r1], M, do_mix, do_evidence, smoothing,
                                       pred, W, X, MX, CNT, G)
            Z += z
            newmax = max(newmax, m)
        r0, r1 = b_off[k], b_off[k + 1]
        if r1 > r0 and (do_mix or do_evidence):
            z, m = td_variants_bonus(Q, s, a, b_vt[r0:r1], b_cbase[r0:r1], b_cdiv, cb_lut, b_lw[r0:r1], M, do_mix, do_evidence,
                                     pred, W, X, MX, CNT, G)
            Z += z
            newmax = max(newmax, m)
        for u in range(3):
            if upd_i[u, 0] == 0:
                continue
            lo = max(t0, upd_i[u, 1])
            hi = min(t1, upd_i[u, 2])
            if hi <= lo:
                continue
            us, ua, us2, uterm, ua2, unew = upd_i[u, 3], upd_i[u, 4], upd_i[u, 5], upd_i[u, 6] != 0, upd_i[u, 7], upd_i[u, 8]
            Eb = E[:hi - lo]
            for i in range(hi - lo):
                Eb[i] = 0.0
            if not uterm:
                for kind in range(3):
                    _expect_range(Q, us2, max(lo, upd_e[u, kind, 0]), min(hi, upd_e[u, kind, 1]), kind,
                                  pi_param_prev if u == 0 else pi_param, pi_first, pcidx, upd_cdiv[u], E, lo, X, MX, CNT, Y)
            td_update(Q, lo, hi, us, ua, upd_r[u], us2, uterm, ua2, unew, cr, c1, cm, cn, ce,
                      gam_trunc if upd_i[u, 9] != 0 else gam, inv_count, alpha, Eb, X, MX)
    return Z, newmax


# ------------------------------------------------------------------------------------------
# Small engines (fixed policies, closed-form families): rows with explicit probabilities
# ------------------------------------------------------------------------------------------
@njit(**_JIT)
def rows_mix_evidence(PT, lw, M, a, smoothing, do_mix, do_evidence, pred, logp_a, W):
    """Rows with raw probabilities PT [A, n] (action-major): weights w = exp(lw - M), pred +=
    sum_i w_i PT[:, i], returns (Z, max lw after); evidence: lw += ``logp_a`` if given
    (non-empty), else log((1 - sm) PT[a] + sm / A). ``W``: scratch of length n."""
    A, n = PT.shape
    keep = 1.0 - smoothing
    uni = smoothing / A
    Z = 0.0
    if do_mix:
        _weights(lw, M, W)
        Z = _sum(W)
        for b in range(A):
            pred[b] += _dot(W, PT[b])
    if do_evidence:
        if logp_a.size > 0:
            for i in range(n):
                lw[i] += logp_a[i]
        else:
            Pa = PT[a]
            for i in range(n):
                lw[i] += vlog(keep * Pa[i] + uni)
    return Z, _lwmax(lw, -np.inf)


@njit(**_JIT)
def family_probs(cyc_ll, entries, react_logprior, react_ll_s, out):
    """Each family's posterior over its current entry's action, action-major: columns of ``out``
    [A, n] are softmax(cyc_ll[entries[i]]) for the cyclic families, then
    softmax(react_logprior[j] + react_ll_s) for the reactive ones (as ``FamilyEngine.prepare``)."""
    A, n = out.shape
    nc = entries.size
    for b in range(A):
        ob = out[b]
        for i in range(nc):
            ob[i] = cyc_ll[entries[i], b]
        for j in range(n - nc):
            ob[nc + j] = react_logprior[j, b] + react_ll_s[b]
    mx = np.empty(n)
    _rowmax(out, n, mx)
    for b in range(A):
        ob = out[b]
        for i in range(n):
            ob[i] = vexp(ob[i] - mx[i])
    sz = mx
    _rowsum(out, n, sz)
    for b in range(A):
        ob = out[b]
        for i in range(n):
            ob[i] = ob[i] / sz[i]
