"""The TD engine: tabular TD programs with shared value tables, stepped together."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from learners.solomonoff.grammar import Grammar
from learners.solomonoff.interpreter.base import Compiled, kernels, resolve_backend, smooth_log
from learners.solomonoff.interpreter.reductions import acount, adot, amax, asum, wsum

KINDS = ("eps", "softmax", "count_bonus")  # greedy is eps = 0


class TDEngine(Compiled):
    """Tabular TD programs with shared value tables (see the module docstring).

    ``tables``: dict of per-table arrays: init, alpha (nan for 1/n), coef [n, 5] (r, const, max,
    next, exp), gamma, pi_kind (-1 when the dynamics do not use the policy, else 0 eps / 1
    softmax / 2 count_bonus), pi_param. ``variants``: dict of per-program arrays: table, kind
    (0/1/2), param (epsilon, 0 for greedy; temperature; bonus c). Optional, for the grammar's
    variants (``hypotheses.RULE_FIELDS``): per row ``first`` (eps-greedy ties to the first
    index) and the epsilon schedule ``sched_per`` (0 constant, 1 per episode, 2 per step),
    ``sched_shape`` (0 exp, 1 linear, 2 exp_to_floor), ``sched_rate``, ``sched_floor``; the same fields with a
    ``pi_`` prefix per table, for the policy its target uses. A scheduled epsilon is state:
    it decays after each transition (``_decay``).

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
        # updates that wait for the next action: a Q(s',a') term, or the act-first order
        deferred = (coef[:, 3] != 0) | np.asarray(tables.get("deferred", False), dtype=bool)
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
        # the discount of an update at a time-limit truncation: 0 where the program treats it as
        # terminal (its bootstrap terms then count for nothing, as after a terminal step)
        trunc_terminal = np.broadcast_to(np.asarray(tables.get("trunc_terminal", False), dtype=bool), coef.shape[:1])
        self.gamma_trunc = np.where(trunc_terminal[order], 0.0, self.gamma)
        self.pi_kind = pi_kind[order]
        self.pi_param = np.asarray(tables["pi_param"], dtype=np.float64)[order].copy()
        nt = coef.shape[0]

        def tfield(name: str, dtype: Any) -> np.ndarray:
            return np.broadcast_to(np.asarray(tables.get("pi_" + name, 0), dtype=dtype), (nt,))[order].copy()

        self.pi_first = tfield("first", np.uint8)
        self.t_sched = {k[6:]: tfield(k, np.int64 if k in ("sched_per", "sched_shape") else np.float64)
                        for k in ("sched_per", "sched_shape", "sched_rate", "sched_floor")}
        # epsilon schedules of the tables' own policies (kind 0 only): start values for reset
        self.t_sched["on"] = np.flatnonzero((self.t_sched["per"] > 0) & (self.pi_kind == 0))
        self.pi_param0 = self.pi_param.copy()
        # the pending (deferred) update of the previous step uses the policy of that step
        self.pi_param_prev = self.pi_param.copy()
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
        vf = {k: np.broadcast_to(np.asarray(variants.get(k, 0)), (vt.size,))[self.variant_order]
              for k in ("first", "sched_per", "sched_shape", "sched_rate", "sched_floor")}
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
                # one LUT row per (epsilon, schedule): a scheduled row's epsilon moves with its LUT row
                sk = np.stack([vp[sl], vf["sched_per"][sl].astype(np.float64), vf["sched_shape"][sl].astype(np.float64),
                               vf["sched_rate"][sl].astype(np.float64), vf["sched_floor"][sl].astype(np.float64)], axis=1)
                uniq, eidx = np.unique(sk, axis=0, return_inverse=True)
                eidx = eidx.reshape(-1)
                g["lut_eps0"] = uniq[:, 0].copy()
                g["lut_sched"] = {"per": uniq[:, 1].astype(np.int64), "shape": uniq[:, 2].astype(np.int64),
                                  "rate": uniq[:, 3].copy(), "floor": uniq[:, 4].copy()}
                g["lut_on"] = np.flatnonzero(g["lut_sched"]["per"] > 0)
                g["lut_idx"] = eidx
                g["lut"] = np.empty(uniq.shape[0] * (A + 1))
                g["lut_row"] = eidx * (A + 1)
                g["first"] = np.ascontiguousarray(vf["first"][sl].astype(np.uint8))
                g["param"] = vp[sl].copy()
                g["eps_each"] = np.empty(g["param"].size)
                g["greedy_mass"] = np.empty(g["param"].size)
                self._set_eps(g, g["lut_eps0"].copy(), np.arange(uniq.shape[0]))
            g["deferred"] = self.deferred[t].astype(np.int64)
            self.groups[name] = g
        # the compiled kernels keep each table's argmax set as a bit mask: up to 64 actions
        if backend is None and self.A > 64:
            backend = "numpy"
        self.backend = resolve_backend(backend)
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
        self.k_cb_lut = smooth_log(np.where(k_ > 0, 1.0 / np.maximum(k_, 1), 0.0), sm, A)
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
        upd_i = np.zeros((3, 10), dtype=np.int64)
        upd_r = np.zeros(3)
        upd_e = np.zeros((3, 3, 2), dtype=np.int64)
        upd_cdiv = np.zeros((3, self.k_pcvals.size * A))
        todo = []
        if transition is not None:
            r, s2, terminated, truncated = transition
            if self.pending is not None:
                ps, pa, pr, ps2 = self.pending
                todo.append((0, True, ps, pa, pr, ps2, False, a, False))
            todo.append((1, False, s, a, r, s2, bool(terminated), None, bool(truncated)))
            if terminated or truncated:
                todo.append((2, True, s, a, r, s2, bool(terminated), None, bool(truncated)))
                self.pending = None
            else:
                self.pending = (s, a, r, s2)
        for u, timing, us, ua, ur, us2, uterm, ua2, utrunc in todo:
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
            upd_i[u] = (1, lo, hi, us, ua, us2, int(uterm), -1 if ua2 is None else int(ua2), int(self.N[int(timing), us, ua]),
                        int(utrunc))
            upd_r[u] = float(ur)
        st = self._kernel_static()
        e_lw, s_lw, b_lw = (lw[sl] for sl in st["slices"])

        def run(part: tuple[int, int, int]) -> tuple[float, np.ndarray, float]:
            lo_b, hi_b, j = part
            pred = np.zeros(A)
            e_st, s_st, b_st, t_st = st["eps"], st["softmax"], st["count_bonus"], st["tables"]
            z, m = kernels.td_step_blocks(self.Q, s, a, lo_b, hi_b, self.TABLE_BLOCK, self.k_TMX, self.k_TCNT, self.k_TMASK,
                                     *e_st[:5], e_lw, e_st[5], *s_st[:2], s_lw, s_st[2],
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

        if transition is not None:
            done = bool(transition[2]) or bool(transition[3])
            plain = combine

            def combine(out: list) -> tuple[float, np.ndarray, float]:
                res = plain(out)
                self._decay(done)     # after this step's kernels have read the epsilons
                return res

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
                      e["param"] if e else empty_f, e["first"] if e else np.zeros(0, dtype=np.uint8), self.k_off["eps"]),
              "softmax": (vt[1], so["param"] if so else empty_f, self.k_off["softmax"]),
              "count_bonus": (vt[2], bo["k_cbase"] if bo else empty_u, self.k_off["count_bonus"]),
              "tables": (self.k_coef[0], self.c1, self.k_coef[1], self.k_coef[2], self.k_coef[3], self.gamma,
                         self.gamma_trunc, self.inv_count, self.alpha, self.pi_param, self.pi_param_prev, self.pi_first,
                         self.k_pcidx)}
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
        self.clock = [0, 0]   # steps and episode ends seen (the epsilon schedules' time)
        self.pi_param[:] = self.pi_param0
        self.pi_param_prev[:] = self.pi_param0
        g = self.groups.get("eps")
        if g is not None and g["lut_on"].size:
            self._set_eps(g, g["lut_eps0"].copy(), np.arange(g["lut_eps0"].size))

    # ------------------------------------------------------------------------------- schedules
    def _set_eps(self, g: dict[str, Any], lut_eps: np.ndarray, rows: np.ndarray) -> None:
        """The eps rows' current epsilons (``lut_eps`` per LUT row), their LUT rows ``rows``
        recomputed; every array is updated in place (the compiled pass holds references)."""
        A = self.A
        g["lut_eps"] = lut_eps
        k_ = np.arange(A + 1, dtype=np.float64)
        e = lut_eps[rows][:, None]
        raw = e / A + np.where(k_ > 0, (1.0 - e) / np.maximum(k_, 1), 0.0)
        g["lut"].reshape(-1, A + 1)[rows] = smooth_log(raw, self.smoothing, A)
        g["param"][:] = lut_eps[g["lut_idx"]]
        g["eps_each"][:] = g["param"] / A
        g["greedy_mass"][:] = 1.0 - g["param"]

    def _decayed(self, eps: np.ndarray, start: np.ndarray, sched: dict[str, np.ndarray], idx: np.ndarray) -> np.ndarray:
        """One decay of each epsilon (``syntax.Schedule.decay``: the same float operations; the
        exponential factor (n - 1) / n is correctly rounded, as a literal like 0.995 is)."""
        rate, floor, shape = sched["rate"][idx], sched["floor"][idx], sched["shape"][idx]
        n = np.round(1.0 / np.where(rate > 0, rate, 1.0))
        k = np.where(sched["per"][idx] == 2, self.clock[0], self.clock[1]).astype(np.float64)
        to_floor = floor + (start - floor) * np.exp(-rate * k)
        return np.where(shape == 2, to_floor, np.maximum(floor, np.where(shape == 0, eps * ((n - 1.0) / n), eps - rate)))

    def _decay(self, episode_end: bool) -> None:
        """After a transition: every per-step schedule decays once, per-episode ones at an
        episode's end; the tables' policies likewise (the previous step's kept for the pending
        update)."""
        self.clock[0] += 1
        self.clock[1] += int(episode_end)
        g = self.groups.get("eps")
        if g is not None and g["lut_on"].size:
            sc, on = g["lut_sched"], g["lut_on"]
            due = on[(sc["per"][on] == 2) | episode_end]
            if due.size:
                cur = g["lut_eps"].copy()
                cur[due] = self._decayed(cur[due], g["lut_eps0"][due], sc, due)
                self._set_eps(g, cur, due)
        self.pi_param_prev[:] = self.pi_param
        on = self.t_sched["on"]
        if on.size:
            due = on[(self.t_sched["per"][on] == 2) | episode_end]
            if due.size:
                self.pi_param[due] = self._decayed(self.pi_param[due], self.pi_param0[due], self.t_sched, due)

    def state_dict(self) -> dict[str, Any]:
        return {"Q": self.Q.copy(), "N": self.N.copy(), "pending": self.pending, "clock": list(self.clock)}

    def load_state_dict(self, d: dict[str, Any]) -> None:
        self.Q = d["Q"].copy()
        self.N = d["N"].copy()
        self.pending = d["pending"]
        self._s = None
        self.set_clock(*d.get("clock", (0, 0)))

    def set_clock(self, steps: int, episodes: int) -> None:
        """Epsilons as after ``steps`` transitions of which ``episodes`` ended an episode
        (replays the decays; a restored or transferred state needs them)."""
        Q, N, pending = self.Q, self.N, self.pending
        self.reset()
        self.Q, self.N, self.pending = Q, N, pending
        # the order of episode ends within the steps does not change any epsilon: each
        # per-step decay and each per-episode decay is applied in sequence on its own value
        for i in range(int(steps)):
            self._decay(i < int(episodes))

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

    def _first_onehot(self) -> np.ndarray:
        """[A, n_tables]: 1.0 at each table's first maximal action at the prepared state."""
        v = self._cache.get("first")
        if v is None:
            v = np.zeros((self.A, self.n_tables))
            v[np.argmax(self._q, axis=0), np.arange(self.n_tables)] = 1.0
            self._cache["first"] = v
        return v

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
            # first-index rows: the greedy mass on the first maximal action, as np.argmax picks it
            fr = g["first"].astype(bool)
            mask = np.where(fr[None, :], np.take(self._first_onehot(), t, axis=1), np.take(self._mask, t, axis=1))
            cnt = np.where(fr, 1.0, np.take(self._cnt, t))
            p = g["eps_each"][None, :] + (g["greedy_mass"][None, :] * mask) / cnt[None, :]
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
                fr = (g["first"] if rows is None else np.take(g["first"], rows)).astype(bool)
                f = np.bincount(t, weights=np.where(fr, 0.0, wg * gm), minlength=self.n_tables)
                f *= self._inv_cnt()
                pred += float((wg * pe).sum()) / self.A
                maskf = self._cache.get("maskf")
                if maskf is None:
                    maskf = self._cache["maskf"] = self._mask.astype(np.float64)
                pred += wsum(maskf, f)
                if fr.any():
                    pred += wsum(self._first_onehot(), np.bincount(t, weights=np.where(fr, wg * gm, 0.0),
                                                                   minlength=self.n_tables))
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
                kt = np.take(k, g["table"])
                fr = g["first"].astype(bool)
                if fr.any():
                    kt = np.where(fr, np.take(self._first_onehot()[a], g["table"]), kt)
                out[g["slice"]] = np.take(g["lut"], g["lut_row"] + kt.astype(np.int64))
            else:
                out[g["slice"]] = smooth_log(self._group_probs(name)[a], self.smoothing, self.A)
        return out

    # ------------------------------------------------------------------------------- learning
    def _policy(self, sl: slice, kind: int, q2: np.ndarray, n2: np.ndarray, params: np.ndarray | None = None) -> np.ndarray:
        """Each table's own action distribution at s' ([A, n] columns of q2), for expected values
        (``params``: the policies' parameters, default the current ones)."""
        par = (self.pi_param if params is None else params)[sl]
        if kind == 0:
            m = q2 == amax(q2)[None, :]
            cnt = acount(m)
            fr = self.pi_first[sl].astype(bool)
            if fr.any():   # first-index ties: the greedy share on the first maximal action
                first = np.zeros_like(m)
                first[np.argmax(q2, axis=0), np.arange(q2.shape[1])] = True
                m = np.where(fr[None, :], first, m)
                cnt = np.where(fr, 1, cnt)
            return (par / self.A)[None, :] + ((1.0 - par)[None, :] * m) / cnt[None, :]
        if kind == 1:
            z = np.exp((q2 - amax(q2)[None, :]) / par[None, :])
            return z / asum(z)[None, :]
        u = q2 + par[None, :] / np.sqrt(n2 + 1.0)[:, None]
        m = u == amax(u)[None, :]
        return m / acount(m)[None, :].astype(np.float64)

    def _update(self, timing: bool, s: int, a: int, r: float, s2: int, terminated: bool, a2: int | None,
                truncated: bool = False, params: np.ndarray | None = None) -> None:
        sl = slice(self.n_imm, self.n_tables) if timing else slice(0, self.n_imm)
        if sl.stop <= sl.start:
            return
        cr, c1, cm, cn, ce, gam = (x[sl] for x in (self.cr, self.c1, self.cm, self.cn, self.ce,
                                                   self.gamma_trunc if truncated else self.gamma))
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
                e[lb] = adot(self._policy(b, k, qb, self.N[int(timing), s2], params), qb)
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
            self._update(True, ps, pa, pr, ps2, False, a, params=self.pi_param_prev)
        self._update(False, s, a, r, s2, terminated, None, truncated)
        if terminated or truncated:
            self._update(True, s, a, r, s2, terminated, None, truncated)
        else:
            self.pending = (s, a, r, s2)
        self._s = None
        self._decay(bool(terminated) or bool(truncated))

    def row_salt(self) -> np.ndarray:
        """Per engine row, a uint64 code of its epsilon schedule and tie rule (0 for a constant
        epsilon and uniform ties), for the probing fingerprints: two schedules that agree over
        the probes' few episodes may part later (a floor reached after the 7th decay), and tie
        rules differ only where values tie, which the probes' dense rewards soon end while a
        sparse-reward task keeps them (with a scheduled epsilon the probes' ties all fall where
        epsilon is 1). So rows that differ in these are never merged as equivalent (not merging
        is always sound: it only costs rows)."""
        out = np.zeros(self.n, dtype=np.uint64)
        g = self.groups.get("eps")
        if g is not None and g["lut_on"].size:
            sc, P = g["lut_sched"], np.uint64(0x9E3779B97F4A7C15)
            key = np.zeros(g["lut_eps0"].size, dtype=np.uint64)
            with np.errstate(over="ignore"):     # a hash of the schedule's values (wraps mod 2^64)
                for x in (g["lut_eps0"], sc["per"].astype(np.float64), sc["shape"].astype(np.float64), sc["rate"],
                          sc["floor"]):
                    key = key * P + np.ascontiguousarray(x, dtype=np.float64).view(np.uint64)
            key[sc["per"] == 0] = 0
            out[g["slice"]] = key[g["lut_idx"]]
        if g is not None:
            out[g["slice"]] ^= g["first"].astype(np.uint64) * np.uint64(0xD1B54A32D192ED03)
        return out

    # ------------------------------------------------------------------------------- queries
    def values_of_variants(self) -> np.ndarray:
        """Table index (position in ``Q``'s last axis) of every variant row."""
        out = np.empty(self.n, dtype=np.int64)
        for g in self.groups.values():
            out[g["slice"]] = g["table"]
        return out
