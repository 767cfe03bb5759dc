"""Batched interpreter: every program of a mixture advances one step together, as arrays.

Programs are grouped into *engines*; each engine holds many hypotheses and answers, for the
current observation, (a) every hypothesis' raw action distribution (``all_probs``), (b) the
weighted sum of them (``mix``) and (c) each hypothesis' smoothed log-likelihood of the action
taken (``loglik``); ``advance`` feeds it the transition. No engine loops in Python over its
programs on a step, except ``ThompsonEngine`` (see there).

* ``TDEngine`` -- TD learners. Programs whose learning dynamics agree (same initial value, step
  size, target and gamma; and, when the target needs the policy at s', the same action rule)
  share one value table; their action rules ("variants") are evaluated on it. Tables live in
  one array ``Q[S, n_tables, A]`` (so ``Q[s]`` is contiguous). The visit counts N(s, a) are the
  same for every table with the same update timing, so there are two (immediate / deferred).
  The greedy and epsilon-greedy variants of a table differ only through epsilon, so their
  log-likelihoods come from a lookup table indexed by (epsilon, size of the argmax set if the
  action is in it else 0) and their predictive mix from two weighted sums per table.
* ``FixedEngine`` -- constant and stochastic policies (one matrix of probabilities).
* ``UCBEngine`` / ``ThompsonEngine`` -- bandit index and posterior-sampling programs (shared
  counts, per-program constants).
* ``FamilyEngine`` -- the closed-form families (cyclic sequences, reactive tables). A family is
  one hypothesis whose predictive is the posterior-weighted vote of its members, which
  factorises over positions (cyclic) or states (reactive); its weight updates by that
  predictive, which is the sum over all its members of their weights -- exactly.

Floating-point operations of the TD updates and action rules are those of
``semantics.ProgramAgent`` (and of the tabular teachers), element for element.

Two backends run the same arithmetic. ``numpy`` (the reference) is the array code in this
file. ``numba`` (the default when numba is installed) runs ``TDEngine`` and the small engines'
hot path as compiled kernels (``kernels.py``): ``TDEngine.step`` is one pass per teacher step
over blocks of value tables (statistics, every rule's mix and evidence, the updates), split
between ``threads`` workers; ``mix_logw`` / ``add_loglik`` / ``mix_and_evidence`` /
``advance`` are the same pass with parts switched off, so every entry point sums in the same
order. ``all_probs``, ``mix(w, idx)`` and ``loglik`` stay numpy on both (queries, tests).
"""
from __future__ import annotations

import math
import os
from typing import Any, Sequence

import numpy as np

from learners.solomonoff.grammar import Grammar

KINDS = ("eps", "softmax", "count_bonus")  # greedy is eps = 0

try:
    from learners.solomonoff import kernels as _K
except ImportError:  # numba missing: the numpy path does the same work, ~5x slower
    _K = None
BACKENDS = ("numba", "numpy")


def _resolve_backend(backend: str | None) -> str:
    if backend is None:
        return "numba" if _K is not None else "numpy"
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "numba" and _K is None:
        raise ImportError("backend 'numba' needs numba (pip install numba)")
    return backend


def _smooth_log(p: np.ndarray, smoothing: float, n_actions: int) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log((1.0 - smoothing) * p + smoothing / n_actions)


# Reductions over the action axis of action-major arrays x[A, n]. numpy's reduce over a short
# inner axis costs ~50 ns per row, so these run over the A contiguous rows instead. The sums
# reproduce numpy's own 1-d summation order (sequential below 8 terms, 8-way pairwise from 8 to
# 128) and BLAS ddot's (sequential below 16 terms), so that sums over the actions of one row
# are bit-identical to the teachers' ``z.sum()`` and ``probs @ Q[s]``.
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


class _Compiled:
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


# =============================================================================================
# TD learners
# =============================================================================================
class TDEngine(_Compiled):
    """Tabular TD programs with shared value tables (see the module docstring).

    ``tables``: dict of per-table arrays: init, alpha (nan for 1/n), coef [n, 5] (r, const, max,
    next, exp), gamma, pi_kind (-1 when the dynamics do not use the policy, else 0 eps / 1
    softmax / 2 count_bonus), pi_param. ``variants``: dict of per-program arrays: table, kind
    (0/1/2), param (epsilon, 0 for greedy; temperature; bonus c).

    Layout is action-major: ``Q[s]`` is ``[A, n_tables]`` and every per-program array is
    ``[A, n]``, so reductions over actions are A vector operations."""

    def __init__(self, grammar: Grammar, tables: dict[str, np.ndarray], variants: dict[str, np.ndarray], smoothing: float,
                 backend: str | None = None, table_block: int | None = None):
        self.S, self.A = grammar.n_states, grammar.n_actions
        # tables per block of the compiled step (tests use small ones); fixed per engine: the
        # block offsets and scratch below are built for it
        self.TABLE_BLOCK = int(table_block if table_block is not None else type(self).TABLE_BLOCK)
        self.smoothing = float(smoothing)
        coef = np.asarray(tables["coef"], dtype=np.float64).reshape(-1, 5)
        deferred = coef[:, 3] != 0
        pi_kind = np.asarray(tables["pi_kind"], dtype=np.int64)
        if np.any(((coef[:, 3] != 0) | (coef[:, 4] != 0)) & (pi_kind < 0)):
            raise ValueError("a table whose target uses the policy at s' needs its action rule (pi_kind)")
        # table order: immediate then deferred; within each, policy-free then by policy kind; within
        # a kind, tables whose target has an E_pi term first (a pending SARSA update needs only those),
        # then those with a max term (the compiled update reads Q(s', .) for a max only where used)
        order = np.lexsort((np.arange(coef.shape[0]), coef[:, 2] == 0, coef[:, 4] == 0, pi_kind, deferred))
        self.table_order = order  # new position -> original table id
        inv = np.empty_like(order)
        inv[order] = np.arange(order.size)
        self.init = np.asarray(tables["init"], dtype=np.float64)[order]
        alpha = np.asarray(tables["alpha"], dtype=np.float64)[order]
        self.inv_count = np.isnan(alpha)
        self.alpha = np.where(self.inv_count, 0.0, alpha)
        self.coef = coef[order]
        self.cr, self.c1, self.cm, self.cn, self.ce = (np.ascontiguousarray(self.coef[:, i]) for i in range(5))
        self.gamma = np.asarray(tables["gamma"], dtype=np.float64)[order]
        self.pi_kind = pi_kind[order]
        self.pi_param = np.asarray(tables["pi_param"], dtype=np.float64)[order]
        self.deferred = deferred[order]
        self.n_tables = order.size
        self.n_imm = int((~self.deferred).sum())
        self.blocks: dict[tuple[bool, int], slice] = {}  # (deferred, kind) -> tables needing their policy at s'
        for timing, base in ((False, 0), (True, self.n_imm)):
            pk = self.pi_kind[base:self.n_imm] if not timing else self.pi_kind[self.n_imm:]
            for k in range(3):
                idx = np.flatnonzero(pk == k)
                if idx.size:
                    self.blocks[(timing, k)] = slice(base + int(idx[0]), base + int(idx[-1]) + 1)
        # per block, the leading tables with an E_pi term
        self.blocks_e = {key: slice(sl.start, sl.start + int((self.ce[sl] != 0).sum())) for key, sl in self.blocks.items()}
        self.any_max = bool((self.cm != 0).any())
        # variants, grouped by kind, sorted by table (new positions)
        vt = inv[np.asarray(variants["table"], dtype=np.int64)]
        vk = np.asarray(variants["kind"], dtype=np.int64)
        vp = np.asarray(variants["param"], dtype=np.float64)
        self.variant_order = np.lexsort((np.arange(vt.size), vt, vk))  # engine row -> caller's variant id
        vt, vk, vp = vt[self.variant_order], vk[self.variant_order], vp[self.variant_order]
        self.n = vt.size
        self.groups: dict[str, dict[str, Any]] = {}
        A = self.A
        for k, name in enumerate(KINDS):
            idx = np.flatnonzero(vk == k)
            if not idx.size:
                continue
            sl = slice(int(idx[0]), int(idx[-1]) + 1)
            t = vt[sl]
            starts = np.flatnonzero(np.r_[True, t[1:] != t[:-1]])
            g = {"slice": sl, "table": t, "param": vp[sl], "tab": t[starts], "starts": starts}
            if name == "eps":
                uniq, eidx = np.unique(vp[sl], return_inverse=True)
                k_ = np.arange(A + 1, dtype=np.float64)
                raw = uniq[:, None] / A + np.where(k_ > 0, (1.0 - uniq[:, None]) / np.maximum(k_, 1), 0.0)
                g["lut"] = _smooth_log(raw, self.smoothing, A).ravel()
                g["lut_row"] = eidx.reshape(-1) * (A + 1)
                g["eps_each"] = vp[sl] / A
                g["greedy_mass"] = 1.0 - vp[sl]
            g["deferred"] = self.deferred[t].astype(np.int64)
            self.groups[name] = g
        # the compiled kernels keep each table's argmax set as a bit mask: up to 64 actions
        if backend is None and self.A > 64:
            backend = "numpy"
        self.backend = _resolve_backend(backend)
        if self.backend == "numba":
            if self.A > 64:
                raise ValueError(f"backend 'numba' handles up to 64 actions, not {self.A}; use backend='numpy'")
            self.k_mask_dtype = next(d for d in (np.uint8, np.uint16, np.uint32, np.uint64) if self.A <= 8 * np.dtype(d).itemsize)
            self._kernel_arrays(vt, vk, vp)
        self.reset()

    KERNEL_BLOCK = 4096

    def _kernel_arrays(self, vt: np.ndarray, vk: np.ndarray, vp: np.ndarray) -> None:
        """Arrays of the compiled kernels (``kernels.td_variants_*``, ``kernels.expect_*``)."""
        A, sm, B = self.A, self.smoothing, self.KERNEL_BLOCK
        self.k_vt = vt.astype(np.uint32)
        k_ = np.arange(A + 1, dtype=np.float64)
        self.k_cb_lut = _smooth_log(np.where(k_ > 0, 1.0 / np.maximum(k_, 1), 0.0), sm, A)
        for name, g in self.groups.items():
            if name == "count_bonus":
                # cdiv[(j * 2 + timing) * A + b] = c_j / sqrt(N_timing(s, b) + 1), built per state
                g["k_cvals"], cidx = np.unique(g["param"], return_inverse=True)
                g["k_cbase"] = ((cidx.reshape(-1) * 2 + g["deferred"]) * A).astype(np.uint32)
            if name == "eps":
                g["k_lut_row"] = g["lut_row"].astype(np.uint32)
        # the count-bonus policies of the tables (for E_pi at s')
        self.k_pcvals, pcidx = np.unique(self.pi_param, return_inverse=True)
        self.k_pcidx = pcidx.reshape(-1).astype(np.uint32)
        # the TD coefficients are small integers: int8 (exact) streams 4 bytes a table, not 32
        small = [np.all((c == np.round(c)) & (np.abs(c) <= 127)) for c in (self.cr, self.cm, self.cn, self.ce)]
        self.k_coef = tuple(c.astype(np.int8) if ok else c for c, ok in zip((self.cr, self.cm, self.cn, self.ce), small))
        self.k_W, self.k_MX, self.k_CNT, self.k_G = (np.empty(B) for _ in range(4))
        self.k_X, self.k_Y = np.empty((A, B)), np.empty((A, B))
        self.k_E = np.zeros(self.n_tables)
        self.k_IDX = np.empty(B, dtype=self.k_mask_dtype)
        self.k_TMX, self.k_TCNT = np.empty(self.n_tables), np.empty(self.n_tables)
        self.k_TMASK = np.empty(self.n_tables, dtype=self.k_mask_dtype)
        # the fused step (``step``): table blocks, and each rule's rows on each block
        TB = self.TABLE_BLOCK
        self.k_nblocks = max(1, -(-self.n_tables // TB))
        edges = np.minimum(np.arange(self.k_nblocks + 1, dtype=np.int64) * TB, self.n_tables)
        self.k_off = {}
        # work per block (fitted to per-block times on a Dark Room history, in 10 ns): a table's
        # statistics and updates ~1.8 (immediate) / ~0.9 (deferred), a row of each rule as below
        imm = np.minimum(np.clip(self.n_imm - edges[:-1], 0, TB), edges[1:] - edges[:-1])
        cost = (edges[1:] - edges[:-1]) * 0.9 + 0.9 * imm
        for name in KINDS:
            if name in self.groups:
                g = self.groups[name]
                self.k_off[name] = np.searchsorted(g["table"], edges).astype(np.int64)
                cost = cost + {"eps": 0.6, "softmax": 1.8, "count_bonus": 1.2}[name] * np.diff(self.k_off[name])
            else:
                self.k_off[name] = np.zeros(self.k_nblocks + 1, dtype=np.int64)
        self.k_cost = np.cumsum(cost)
        self.threads = 1
        self._scratch = [self._new_scratch()]
        self._pool = None

    TABLE_BLOCK = 512

    def _new_scratch(self) -> tuple[np.ndarray, ...]:
        A, B = self.A, self.KERNEL_BLOCK
        return (np.empty(B), np.empty((A, B)), np.empty(B), np.empty(B), np.empty(B), np.empty(B, dtype=self.k_mask_dtype),
                np.empty(self.TABLE_BLOCK), np.empty((A, B)))

    def __getstate__(self) -> dict[str, Any]:
        d = self.__dict__.copy()
        d["_pool"] = None
        return d

    def set_threads(self, k: int) -> None:
        """Worker threads of ``step`` (table blocks are split between them; the kernels release
        the GIL)."""
        self.threads = max(1, int(k))
        while len(self._scratch) < self.threads:
            self._scratch.append(self._new_scratch())

    def step(self, s: int, a: int, r: float, s2: int, terminated: bool, truncated: bool, lw: np.ndarray,
             M: float, wait: bool = True):
        """The teacher's step in one pass over the tables: ``mix_and_evidence(a, lw, M)`` at s,
        then ``advance(s, a, r, s2, terminated, truncated)``. Returns (Z, mix, max lw after).
        ``wait=False``: return, once the calling thread's share is done, a function that waits
        for the worker threads' shares and returns the result (the caller works meanwhile)."""
        return self._blocks(s, a, lw, M, True, True, (r, s2, terminated, truncated), wait)

    #: share of the table blocks the calling thread takes when it has other work to do after
    #: (``step(wait=False)``): the small engines' rows, ~10% of a Dark Room step
    CALLER_SHARE = 0.52

    def _blocks(self, s: int, a: int, lw: np.ndarray, M: float, do_mix: bool, do_evidence: bool,
                transition: tuple | None, wait: bool = True):
        A = self.A
        groups = self.groups
        # count-bonus rows at s (before this step's counts change)
        if "count_bonus" in groups and (do_mix or do_evidence):
            root = np.sqrt(self.N[:, s] + 1.0)
            b_cdiv = (groups["count_bonus"]["k_cvals"][:, None, None] / root[None, :, :]).ravel()
        else:
            b_cdiv = np.zeros(1)
        # the updates of ``advance``, with the counts each sees (as _update increments them)
        upd_i = np.zeros((3, 9), dtype=np.int64)
        upd_r = np.zeros(3)
        upd_e = np.zeros((3, 3, 2), dtype=np.int64)
        upd_cdiv = np.zeros((3, self.k_pcvals.size * A))
        todo = []
        if transition is not None:
            r, s2, terminated, truncated = transition
            if self.pending is not None:
                ps, pa, pr, ps2 = self.pending
                todo.append((0, True, ps, pa, pr, ps2, False, a))
            todo.append((1, False, s, a, r, s2, bool(terminated), None))
            if terminated or truncated:
                todo.append((2, True, s, a, r, s2, bool(terminated), None))
                self.pending = None
            else:
                self.pending = (s, a, r, s2)
        for u, timing, us, ua, ur, us2, uterm, ua2 in todo:
            lo, hi = (self.n_imm, self.n_tables) if timing else (0, self.n_imm)
            if hi <= lo:
                continue
            if not uterm:
                for k in range(3):
                    b = self.blocks.get((timing, k))
                    if b is not None and ua2 is not None:
                        b = self.blocks_e[(timing, k)]
                    if b is not None and b.stop > b.start:
                        upd_e[u, k] = (b.start, b.stop)
                if (timing, 2) in self.blocks:
                    upd_cdiv[u] = (self.k_pcvals[:, None] / np.sqrt(self.N[int(timing), us2] + 1.0)[None, :]).ravel()
            self.N[int(timing), us, ua] += 1
            upd_i[u] = (1, lo, hi, us, ua, us2, int(uterm), -1 if ua2 is None else int(ua2), int(self.N[int(timing), us, ua]))
            upd_r[u] = float(ur)
        st = self._kernel_static()
        e_lw, s_lw, b_lw = (lw[sl] for sl in st["slices"])

        def run(part: tuple[int, int, int]) -> tuple[float, np.ndarray, float]:
            lo_b, hi_b, j = part
            pred = np.zeros(A)
            e_st, s_st, b_st, t_st = st["eps"], st["softmax"], st["count_bonus"], st["tables"]
            z, m = _K.td_step_blocks(self.Q, s, a, lo_b, hi_b, self.TABLE_BLOCK, self.k_TMX, self.k_TCNT, self.k_TMASK,
                                     *e_st[:4], e_lw, e_st[4], *s_st[:2], s_lw, s_st[2],
                                     *b_st[:2], b_cdiv, self.k_cb_lut, b_lw, b_st[2],
                                     M, do_mix, do_evidence, self.smoothing, pred, upd_i, upd_r, upd_e, upd_cdiv,
                                     *t_st, *self._scratch[j])
            return z, pred, m

        nb = self.k_nblocks
        if transition is not None:
            self._s = None

        def combine(out: list) -> tuple[float, np.ndarray, float]:
            Z = sum(o[0] for o in out)
            pred = out[0][1]
            for o in out[1:]:
                pred = pred + o[1]
            return Z, pred, max(o[2] for o in out)

        if self.threads <= 1 or nb < 2:
            res = combine([run((0, nb, 0))])
            return res if wait else (lambda: res)
        # a fixed split (by the work estimate ``k_cost``): the partial sums, and so the rounding
        # of Z and of the mix, do not depend on timing (only on threads and ``wait``)
        k = self.threads
        parts = self._parts.get((k, wait)) if hasattr(self, "_parts") else None
        if parts is None:
            first = 1.0 / k if wait else self.CALLER_SHARE * 2.0 / k
            fr = first + (1.0 - first) * np.arange(0, k - 1) / max(k - 1, 1)
            cuts = np.searchsorted(self.k_cost, self.k_cost[-1] * fr)
            cuts = [0] + [int(min(max(c + 1, 1), nb - 1)) for c in cuts] + [nb]
            parts = [(cuts[i], cuts[i + 1], i) for i in range(k) if cuts[i + 1] > cuts[i]]
            if not hasattr(self, "_parts"):
                self._parts = {}
            self._parts[(k, wait)] = parts
        if self._pool is None or self._pool_pid != os.getpid():   # (a forked child has no pool threads)
            from concurrent.futures import ThreadPoolExecutor

            self._pool, self._pool_pid = ThreadPoolExecutor(max_workers=k - 1), os.getpid()
        futs = [self._pool.submit(run, p) for p in parts[1:]]
        mine = run(parts[0])
        if wait:
            return combine([mine] + [f.result() for f in futs])
        return lambda: combine([mine] + [f.result() for f in futs])

    def _kernel_static(self) -> dict[str, Any]:
        """The per-row and per-table arrays ``td_step_blocks`` takes (fixed after construction)."""
        st = getattr(self, "_kstatic", None)
        if st is not None:
            return st
        g = self.groups
        empty_f, empty_u = np.zeros(0), np.zeros(0, dtype=np.uint32)
        sl = [g[n]["slice"] if n in g else slice(0, 0) for n in KINDS]
        vt = [self.k_vt[x] for x in sl]
        e, so, bo = (g.get(n) for n in KINDS)
        st = {"slices": sl,
              "eps": (vt[0], e["lut"] if e else np.zeros(1), e["k_lut_row"] if e else empty_u,
                      e["param"] if e else empty_f, self.k_off["eps"]),
              "softmax": (vt[1], so["param"] if so else empty_f, self.k_off["softmax"]),
              "count_bonus": (vt[2], bo["k_cbase"] if bo else empty_u, self.k_off["count_bonus"]),
              "tables": (self.k_coef[0], self.c1, self.k_coef[1], self.k_coef[2], self.k_coef[3], self.gamma,
                         self.inv_count, self.alpha, self.pi_param, self.k_pcidx)}
        self._kstatic = st
        return st

    def _pass(self, a: int, lw: np.ndarray, M: float, do_mix: bool, do_evidence: bool) -> tuple[float, np.ndarray, float]:
        """Every rule's compiled pass at the prepared state: (Z, mix, max lw after). The same
        block-by-block pass as ``step`` (so the sums come out in the same order), without updates."""
        return self._blocks(self._s, a, lw, M, do_mix, do_evidence, None)

    # ------------------------------------------------------------------------------- state
    def reset(self) -> None:
        self.Q = np.empty((self.S, self.A, self.n_tables))
        self.Q[:] = self.init[None, None, :]
        self.N = np.zeros((2, self.S, self.A), dtype=np.int64)  # [immediate, deferred]
        self.pending: tuple[int, int, float, int] | None = None
        self._s = None

    def state_dict(self) -> dict[str, Any]:
        return {"Q": self.Q.copy(), "N": self.N.copy(), "pending": self.pending}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.Q = d["Q"].copy()
        self.N = d["N"].copy()
        self.pending = d["pending"]
        self._s = None

    def table_values(self) -> np.ndarray:
        """Q as [n_tables, S, A] (caller's table order is ``table_order``)."""
        return np.transpose(self.Q, (2, 0, 1))

    # ------------------------------------------------------------------------------- acting
    def prepare(self, s: int) -> None:
        """Set the state the action queries are about (the numpy statistics are computed on
        first use: the compiled path reads ``Q[s]`` directly)."""
        self._s = s
        self._cache: dict[str, Any] = {}
        self._stats = False

    def _prep_stats(self) -> None:
        if self._stats:
            return
        q = self.Q[self._s]                # [A, n_tables]
        mx = amax(q)
        mask = q == mx[None, :]
        self._q, self._mx, self._mask = q, mx, mask
        self._cnt = acount(mask)
        self._stats = True

    def _inv_cnt(self) -> np.ndarray:
        v = self._cache.get("inv_cnt")
        if v is None:
            v = self._cache["inv_cnt"] = 1.0 / self._cnt
        return v

    def _group_probs(self, name: str) -> np.ndarray:
        """Raw probabilities [A, n_group] of the variants of one kind at the prepared state."""
        if name in self._cache:
            return self._cache[name]
        self._prep_stats()
        g = self.groups[name]
        t = g["table"]
        if name == "eps":
            p = g["eps_each"][None, :] + (g["greedy_mass"][None, :] * np.take(self._mask, t, axis=1)) / np.take(self._cnt, t)[None, :]
        elif name == "softmax":
            d = self._cache.get("d")
            if d is None:
                d = self._cache["d"] = self._q - self._mx[None, :]
            z = np.take(d, t, axis=1)
            z /= g["param"][None, :]
            np.exp(z, out=z)
            z /= asum(z)[None, :]
            p = z
        else:
            root = np.sqrt(self.N[:, self._s] + 1.0)          # [2, A]
            u = np.take(root.T, g["deferred"], axis=1)       # [A, n]
            np.divide(g["param"][None, :], u, out=u)
            u += np.take(self._q, t, axis=1)
            m = u == amax(u)[None, :]
            p = m / acount(m)[None, :].astype(np.float64)
        self._cache[name] = p
        return p

    def all_probs(self) -> np.ndarray:
        return self.all_probs_am().T

    def all_probs_am(self) -> np.ndarray:
        """Raw probabilities of every variant, action-major [A, n]."""
        out = np.empty((self.A, self.n))
        for name, g in self.groups.items():
            out[:, g["slice"]] = self._group_probs(name)
        return out

    def mix(self, w: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        """sum_v w_v p_v over the variants (``idx``: only rows idx, sorted, with weights w)."""
        self._prep_stats()
        pred = np.zeros(self.A)
        for name, g in self.groups.items():
            sl = g["slice"]
            if idx is None:
                wg, rows = w[sl], None
            else:
                lo, hi = np.searchsorted(idx, (sl.start, sl.stop))
                if hi == lo:
                    continue
                wg, rows = w[lo:hi], idx[lo:hi] - sl.start
            if name == "eps":
                t = g["table"] if rows is None else np.take(g["table"], rows)
                gm = g["greedy_mass"] if rows is None else np.take(g["greedy_mass"], rows)
                pe = g["param"] if rows is None else np.take(g["param"], rows)
                f = np.bincount(t, weights=wg * gm, minlength=self.n_tables)
                f *= self._inv_cnt()
                pred += float((wg * pe).sum()) / self.A
                maskf = self._cache.get("maskf")
                if maskf is None:
                    maskf = self._cache["maskf"] = self._mask.astype(np.float64)
                pred += wsum(maskf, f)
            else:
                p = self._group_probs(name)
                pred += wsum(p if rows is None else np.take(p, rows, axis=1), wg)
        return pred

    def loglik(self, a: int) -> np.ndarray:
        self._prep_stats()
        out = np.empty(self.n)
        for name, g in self.groups.items():
            if name == "eps":
                k = np.where(self._mask[a], self._cnt, 0)
                out[g["slice"]] = np.take(g["lut"], g["lut_row"] + np.take(k, g["table"]))
            else:
                out[g["slice"]] = _smooth_log(self._group_probs(name)[a], self.smoothing, self.A)
        return out

    # ------------------------------------------------------------------------------- learning
    def _policy(self, sl: slice, kind: int, q2: np.ndarray, n2: np.ndarray) -> np.ndarray:
        """Each table's own action distribution at s' ([A, n] columns of q2), for expected values."""
        par = self.pi_param[sl]
        if kind == 0:
            m = q2 == amax(q2)[None, :]
            return (par / self.A)[None, :] + ((1.0 - par)[None, :] * m) / acount(m)[None, :]
        if kind == 1:
            z = np.exp((q2 - amax(q2)[None, :]) / par[None, :])
            return z / asum(z)[None, :]
        u = q2 + par[None, :] / np.sqrt(n2 + 1.0)[:, None]
        m = u == amax(u)[None, :]
        return m / acount(m)[None, :].astype(np.float64)

    def _update(self, timing: bool, s: int, a: int, r: float, s2: int, terminated: bool, a2: int | None) -> None:
        sl = slice(self.n_imm, self.n_tables) if timing else slice(0, self.n_imm)
        if sl.stop <= sl.start:
            return
        cr, c1, cm, cn, ce, gam = (x[sl] for x in (self.cr, self.c1, self.cm, self.cn, self.ce, self.gamma))
        n_t = sl.stop - sl.start
        if terminated:
            boot = np.zeros(n_t)
        else:
            q2 = self.Q[s2][:, sl]                                  # [A, n_t]
            m = amax(q2) if self.any_max else np.zeros(n_t)
            e = np.zeros(n_t)
            for k in range(3):
                b = self.blocks.get((timing, k))
                if b is None:
                    continue
                if a2 is not None:
                    b = self.blocks_e[(timing, k)]   # the next action is known: only E_pi terms need pi
                    if b.stop == b.start:
                        continue
                lb = slice(b.start - sl.start, b.stop - sl.start)
                qb = q2[:, lb]
                e[lb] = adot(self._policy(b, k, qb, self.N[int(timing), s2]), qb)
            nq = q2[a2] if a2 is not None else e
            boot = (cm * m + cn * nq) + ce * e
        y = (cr * r + c1) + gam * boot
        self.N[int(timing), s, a] += 1
        n_new = self.N[int(timing), s, a]
        step = np.where(self.inv_count[sl], 1.0 / n_new, self.alpha[sl])
        qa = self.Q[s, a, sl]
        self.Q[s, a, sl] = qa + step * (y - qa)

    def advance(self, s: int, a: int, r: float, s2: int, terminated: bool, truncated: bool) -> None:
        if self.backend == "numba":   # the compiled step's update pass, without mix or evidence
            lw = getattr(self, "_no_lw", None)
            if lw is None or lw.size != self.n:
                lw = self._no_lw = np.zeros(self.n)
            self._blocks(s, a, lw, 0.0, False, False, (r, s2, terminated, truncated))
            return
        if self.pending is not None:
            ps, pa, pr, ps2 = self.pending
            self.pending = None
            self._update(True, ps, pa, pr, ps2, False, a)
        self._update(False, s, a, r, s2, terminated, None)
        if terminated or truncated:
            self._update(True, s, a, r, s2, terminated, None)
        else:
            self.pending = (s, a, r, s2)
        self._s = None

    # ------------------------------------------------------------------------------- queries
    def values_of_variants(self) -> np.ndarray:
        """Table index (position in ``Q``'s last axis) of every variant row."""
        out = np.empty(self.n, dtype=np.int64)
        for g in self.groups.values():
            out[g["slice"]] = g["table"]
        return out


# =============================================================================================
# Fixed policies, bandit programs
# =============================================================================================
class _RowsCompiled(_Compiled):
    """The compiled mix / evidence of an engine whose rows' probabilities are explicit (``_rows()``)."""

    backend = "numpy"

    def _rows(self) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _pass(self, a: int, lw: np.ndarray, M: float, do_mix: bool, do_evidence: bool) -> tuple[float, np.ndarray, float]:
        PT, logpT = self._rows()            # action-major [A, n]
        pred = np.zeros(self.A)
        W = getattr(self, "_W", None)
        if W is None or W.size != self.n:
            W = self._W = np.empty(self.n)
        Z, mx = _K.rows_mix_evidence(PT, lw, M, a, self.smoothing, do_mix, do_evidence, pred,
                                     logpT[a] if logpT.size else np.zeros(0), W)
        return Z, pred, mx



class FixedEngine(_RowsCompiled):
    def __init__(self, grammar: Grammar, probs: np.ndarray, smoothing: float, backend: str | None = None):
        self.A = grammar.n_actions
        self.smoothing = float(smoothing)
        self.P = np.asarray(probs, dtype=np.float64).reshape(-1, self.A)
        self.logp = _smooth_log(self.P, smoothing, self.A)
        self.n = self.P.shape[0]
        self.backend = _resolve_backend(backend)

    def _rows(self) -> tuple[np.ndarray, np.ndarray]:
        if getattr(self, "_PT", None) is None:
            self._PT, self._logpT = np.ascontiguousarray(self.P.T), np.ascontiguousarray(self.logp.T)
        return self._PT, self._logpT

    def reset(self) -> None:
        pass

    def prepare(self, s: int) -> None:
        pass

    def all_probs(self) -> np.ndarray:
        return self.P

    def all_probs_am(self) -> np.ndarray:
        return np.ascontiguousarray(self.all_probs().T)

    def mix(self, w: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        return wsum((self.P if idx is None else self.P[idx]).T, w)

    def loglik(self, a: int) -> np.ndarray:
        return self.logp[:, a]

    def advance(self, s, a, r, s2, terminated, truncated) -> None:
        pass


class UCBEngine:
    """UCB1 programs: shared pull counts and reward sums per (state, arm); per-program c."""

    def __init__(self, grammar: Grammar, c: np.ndarray, smoothing: float):
        self.S, self.A = grammar.n_states, grammar.n_actions
        self.c = np.asarray(c, dtype=np.float64)
        self.n = self.c.size
        self.smoothing = smoothing
        self.reset()

    def reset(self) -> None:
        self.N = np.zeros((self.S, self.A), dtype=np.int64)
        self.sum = np.zeros((self.S, self.A))

    def prepare(self, s: int) -> None:
        N, tot = self.N[s], self.sum[s]
        unpulled = N == 0
        if unpulled.any():
            p = np.broadcast_to(unpulled / float(np.count_nonzero(unpulled)), (self.n, self.A))
        else:
            t = float(N.sum())
            index = tot / N + np.sqrt(self.c[:, None] * math.log(t) / N[None, :])
            m = index == index.max(axis=1, keepdims=True)
            p = m / m.sum(axis=1, keepdims=True).astype(np.float64)
        self._p = p

    def all_probs(self) -> np.ndarray:
        return np.array(self._p)

    def all_probs_am(self) -> np.ndarray:
        return np.ascontiguousarray(self.all_probs().T)

    def mix(self, w: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        return wsum((self._p if idx is None else self._p[idx]).T, w)

    def loglik(self, a: int) -> np.ndarray:
        return _smooth_log(np.ascontiguousarray(self._p[:, a]), self.smoothing, self.A)

    def advance(self, s, a, r, s2, terminated, truncated) -> None:
        self.N[s, a] += 1
        self.sum[s, a] += r


class ThompsonEngine:
    """Thompson sampling programs. Their exact action probabilities need an adaptive quadrature per
    distinct posterior (``learners.teachers.bandit.thompson_probs``, ~0.3 ms), so this engine
    loops over its programs -- the one exception to batching; Levin's Kt charges Thompson
    programs log2(80 A^2) bits of compute, which keeps them few."""

    def __init__(self, grammar: Grammar, prior_alpha: np.ndarray, prior_beta: np.ndarray, smoothing: float):
        self.S, self.A = grammar.n_states, grammar.n_actions
        self.a0 = np.asarray(prior_alpha, dtype=np.float64)
        self.b0 = np.asarray(prior_beta, dtype=np.float64)
        self.n = self.a0.size
        self.smoothing = smoothing
        self.reset()

    def reset(self) -> None:
        self.alpha = np.repeat(self.a0[:, None, None], self.S, 1).repeat(self.A, 2)
        self.beta = np.repeat(self.b0[:, None, None], self.S, 1).repeat(self.A, 2)
        self._key = None

    def prepare(self, s: int) -> None:
        from learners.teachers.bandit import thompson_probs

        key = (s, self.alpha[:, s].tobytes(), self.beta[:, s].tobytes())
        if key == self._key:
            return
        self._p = np.stack([thompson_probs(self.alpha[i, s], self.beta[i, s]) for i in range(self.n)]) if self.n else np.zeros((0, self.A))
        self._key = key

    def all_probs(self) -> np.ndarray:
        return self._p

    def all_probs_am(self) -> np.ndarray:
        return np.ascontiguousarray(self.all_probs().T)

    def mix(self, w: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        return wsum((self._p if idx is None else self._p[idx]).T, w)

    def loglik(self, a: int) -> np.ndarray:
        return _smooth_log(self._p[:, a], self.smoothing, self.A)

    def advance(self, s, a, r, s2, terminated, truncated) -> None:
        self.alpha[:, s, a] += r
        self.beta[:, s, a] += 1.0 - r


# =============================================================================================
# Closed-form families
# =============================================================================================
class FamilyEngine(_RowsCompiled):
    """Cyclic families (clock, period L) and reactive families (default d, exception rate 2^-k).

    Per-entry log-likelihoods of "the entry's action is a'" are shared: cyclic entries
    (clock, L, j) in ``cyc_ll [n_entries, A]``; reactive entries per state in ``react_ll [S, A]``.
    A family's raw probabilities at a step are the posterior over its current entry's action."""

    def __init__(self, grammar: Grammar, cyclic: Sequence[tuple[str, int]], reactive: Sequence[tuple[int, int]],
                 smoothing: float, backend: str | None = None):
        self.S, self.A = grammar.n_states, grammar.n_actions
        self.backend = _resolve_backend(backend)
        self.smoothing = smoothing
        A = self.A
        self.cyclic = list(cyclic)
        self.reactive = list(reactive)
        self.n_cyc, self.n_react = len(self.cyclic), len(self.reactive)
        self.n = self.n_cyc + self.n_react
        self.clock_of = np.array([0 if c == "episode" else 1 for c, _ in self.cyclic], dtype=np.int64)
        self.period = np.array([L for _, L in self.cyclic], dtype=np.int64)
        self.offset = np.concatenate([[0], np.cumsum(self.period)[:-1]]).astype(np.int64) if self.n_cyc else np.zeros(0, np.int64)
        self.n_entries = int(self.period.sum()) if self.n_cyc else 0
        self.default = np.array([d for d, _ in self.reactive], dtype=np.int64)
        self.rho = np.array([2.0 ** -k for _, k in self.reactive])
        # log prior of the entry's action under each reactive family: [n_react, A]
        if self.n_react:
            lp = np.log(self.rho / (A - 1))[:, None] * np.ones((1, A))
            lp[np.arange(self.n_react), self.default] = np.log1p(-self.rho)
            self.react_logprior = lp
        self.log_hit = math.log((1.0 - smoothing) + smoothing / A)
        self.log_miss = math.log(smoothing / A)
        self.cyc_ll = np.zeros((self.n_entries, A))
        self.react_ll = np.zeros((self.S, A))
        self.reset()

    def reset(self) -> None:
        """Program state = the clocks (the likelihood tables are evidence, kept)."""
        self.t = np.zeros(2, dtype=np.int64)  # [episode step, global step]

    def reset_evidence(self) -> None:
        self.cyc_ll[:] = 0.0
        self.react_ll[:] = 0.0

    def _entries(self) -> np.ndarray:
        return self.offset + self.t[self.clock_of] % self.period

    def _rows(self) -> tuple[np.ndarray, np.ndarray]:
        return self._pT, np.zeros((0, 0))

    def prepare(self, s: int) -> None:
        if self.backend == "numba":
            self._pT = np.empty((self.A, self.n))
            rlp = self.react_logprior if self.n_react else np.zeros((0, self.A))
            _K.family_probs(self.cyc_ll, self._entries() if self.n_cyc else np.zeros(0, np.int64), rlp,
                            self.react_ll[s], self._pT)
            self._p = self._pT.T
            self._s = s
            return
        parts = []
        if self.n_cyc:
            ll = self.cyc_ll[self._entries()]
            post = np.exp(ll - ll.max(axis=1, keepdims=True))
            parts.append(post / post.sum(axis=1, keepdims=True))
        if self.n_react:
            ll = self.react_logprior + self.react_ll[s][None, :]
            post = np.exp(ll - ll.max(axis=1, keepdims=True))
            parts.append(post / post.sum(axis=1, keepdims=True))
        self._p = np.concatenate(parts) if parts else np.zeros((0, self.A))
        self._s = s

    def all_probs(self) -> np.ndarray:
        return self._p

    def all_probs_am(self) -> np.ndarray:
        return np.ascontiguousarray(self.all_probs().T)

    def mix(self, w: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        return wsum((self._p if idx is None else self._p[idx]).T, w)

    def loglik(self, a: int) -> np.ndarray:
        return _smooth_log(self._p[:, a], self.smoothing, self.A)

    def evidence(self, s: int, a: int) -> None:
        """Teacher-forced step: the entries in use learn that the teacher took ``a``."""
        hit = np.full(self.A, self.log_miss)
        hit[a] = self.log_hit
        if self.n_cyc:
            e = self._entries()
            self.cyc_ll[e] += hit  # entries of different families are distinct rows
        if self.n_react:
            self.react_ll[s] += hit

    def advance(self, s, a, r, s2, terminated, truncated) -> None:
        self.t[1] += 1
        self.t[0] = 0 if (terminated or truncated) else self.t[0] + 1

    # ---- members -----------------------------------------------------------------------------
    def cyclic_member_log_post(self, fam: int, seq: Sequence[int]) -> float:
        """log posterior probability of one member given the family (product over positions)."""
        L = int(self.period[fam])
        ll = self.cyc_ll[self.offset[fam]:self.offset[fam] + L]
        lse = np.logaddexp.reduce(ll, axis=1)
        return float(np.sum(ll[np.arange(L), list(seq)] - lse))

    def cyclic_map_member(self, fam: int) -> tuple[int, ...]:
        L = int(self.period[fam])
        return tuple(int(x) for x in self.cyc_ll[self.offset[fam]:self.offset[fam] + L].argmax(axis=1))

    def reactive_member_log_post(self, fam: int, table: np.ndarray) -> float:
        ll = self.react_logprior[fam][None, :] + self.react_ll
        lse = np.logaddexp.reduce(ll, axis=1)
        return float(np.sum(ll[np.arange(self.S), table] - lse))

    def reactive_map_member(self, fam: int) -> np.ndarray:
        return (self.react_logprior[fam][None, :] + self.react_ll).argmax(axis=1)


__all__ = ["TDEngine", "FixedEngine", "UCBEngine", "ThompsonEngine", "FamilyEngine"]
