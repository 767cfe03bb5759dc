"""The mixture's inference: the predictive of the teacher's next action, and Bayes' rule on its
actual action, in log space (a part of ``Mixture``).

``observe(..., intervention=False)`` is evidence (the teacher's action): weights are multiplied
by each program's probability of it. ``intervention=True`` (the mixture acted itself): every
program's state advances -- its value table learns from the transition -- but no weight changes.
``predict_history`` is the teacher-forced fast path over a whole history.
"""
from __future__ import annotations

import math
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

import numpy as np
from tqdm import tqdm

from learners.errors import HistoryFitError
from learners.protocols import Transition, sample_action
from learners.solomonoff.misspecification import MisspecificationWarning
from learners.solomonoff.syntax import Program


class Inference:
    """Prediction and conditioning (see the module docstring)."""

    # ---- worker threads (numpy releases the GIL inside its loops) ------------------------------
    def _par(self, fn, items):
        items = list(items)
        if self.threads <= 1 or len(items) < 2 or not getattr(self, "_shards", True):
            return [fn(x) for x in items]
        if self._pool is None or getattr(self, "_pool_pid", None) != os.getpid():   # (none in a forked child)
            self._pool, self._pool_pid = ThreadPoolExecutor(max_workers=self.threads), os.getpid()
        return list(self._pool.map(fn, items))

    # ------------------------------------------------------------------------------- protocol
    def _state(self, obs: Any) -> int:
        try:
            s = int(obs)
        except (TypeError, ValueError):
            raise HistoryFitError(f"observation {obs!r} is not a state index of Discrete({self.n_states})") from None
        if not 0 <= s < self.n_states:
            raise HistoryFitError(f"observation {obs!r} outside the grammar's {self.n_states} states")
        return s

    #: Active set: hypotheses whose log weight is within ``_active_nats`` of the best are
    #: exponentiated and mixed; the rest have weight exactly 0.0 in float64 for the next
    #: ``ACTIVE_EVERY`` evidence steps (a hypothesis gains at most log(A/eps) nats per step on the
    #: best), so skipping them changes no bit of any weight (only the summation order).
    ACTIVE_EVERY = 32

    def _active(self, M: float) -> list[np.ndarray | None]:
        if self._act is None or self._act_age >= self.ACTIVE_EVERY:
            gain = math.log(self.n_actions / self.smoothing)
            thr = M - (746.0 + self.ACTIVE_EVERY * gain + 10.0)
            act = []
            for lw in self.logw:
                idx = np.flatnonzero(lw >= thr)
                act.append(None if idx.size > 0.5 * lw.size else idx)
            self._act, self._act_age = act, 0
        return self._act

    def _predict(self, s: int, evidence: int | None = None, transition: tuple | None = None) -> np.ndarray:
        """The predictive at state s. ``evidence``: an action whose evidence the compiled engines
        apply in the same pass (their ``mix_and_evidence``); with ``transition`` = (r, s2,
        terminated, truncated) they also advance in it (their ``step``). Their indices are left in
        ``self._fused`` so that ``_step`` does the rest for the others only."""
        self._fused, self._advanced = (), ()
        self._fused_max = {}
        if self._cache is not None and self._cache[0] == s:
            return self._cache[1]
        fused, advanced = [], []

        cache = getattr(self, "_lwmax", None)
        if cache is None:
            cache = self._lwmax = {}
        fused_max: dict[int, float] = {}

        def prep(k: int) -> float:
            c = cache.get(k)
            if c is not None and c[0] is self.logw[k] and c[1] == self.n_evidence:
                return c[2]      # max(logw[k]) as the compiled pass that last changed it returned
            return float(self.logw[k].max())

        M = max(self._par(prep, range(len(self.groups))))
        act = self._active(M)

        # a compiled TD engine with worker threads: its share first; the rest meanwhile
        later = {}
        if transition is not None and evidence is not None and not getattr(self, "_shards", True):
            for k, gr in enumerate(self.groups):
                eng = gr.engine
                if getattr(eng, "backend", None) == "numba" and hasattr(eng, "step") and eng.threads > 1:
                    fused.append(k)
                    advanced.append(k)
                    later[k] = eng.step(s, evidence, *transition, self.logw[k], M, wait=False)

        def part(k: int) -> tuple[float, np.ndarray | None]:
            lw, idx = self.logw[k], act[k]
            eng = self.groups[k].engine
            if k in later:
                z, m, fused_max[k] = later[k]()
                return z, m
            eng.prepare(s)
            if getattr(eng, "backend", None) == "numba":
                if evidence is None:
                    return eng.mix_logw(lw, M)
                fused.append(k)
                if transition is not None and hasattr(eng, "step"):
                    z, m, fused_max[k] = eng.step(s, evidence, *transition, lw, M)
                    advanced.append(k)
                else:
                    z, m, fused_max[k] = eng.mix_and_evidence(evidence, lw, M)
                return z, m
            if idx is None:
                w = np.exp(lw - M)
            elif idx.size == 0:
                return 0.0, None
            else:
                w = np.exp(lw[idx] - M)
            return float(w.sum()), self.groups[k].engine.mix(w, idx)

        Z = 0.0
        raw = np.zeros(self.n_actions)
        for z, m in self._par(part, [k for k in range(len(self.groups)) if k not in later] + list(later)):
            if m is not None:
                Z += z
                raw += m
        pred = (1.0 - self.smoothing) * (raw / Z) + self.smoothing / self.n_actions
        pred /= pred.sum()
        self._cache = (s, pred)
        self._fused = tuple(fused)
        self._advanced = tuple(advanced)
        self._fused_max = fused_max
        return pred

    def action_probs(self, obs: Any) -> np.ndarray:
        """Predictive distribution of the teacher's next action (pure)."""
        return self._predict(self._state(obs)).copy()

    def act(self, obs: Any) -> int:
        return sample_action(self.action_probs(obs), self.rng)

    def observe(self, transition: Transition, *, intervention: bool = True) -> None:
        """``intervention=False``: the teacher's step (evidence: every weight is multiplied by the
        program's probability of the action). ``intervention=True`` (the protocol's default): the
        mixture acted itself; programs advance, weights do not change."""
        t = transition
        s, s2 = self._state(t.obs), self._state(t.next_obs)
        a = int(t.action)
        if not 0 <= a < self.n_actions:
            raise HistoryFitError(f"action {t.action!r} outside the grammar's {self.n_actions} actions")
        self._step(s, a, float(t.reward), s2, bool(t.terminated), bool(t.truncated), evidence=not intervention)

    def _step(self, s: int, a: int, r: float, s2: int, term: bool, trunc: bool, evidence: bool,
              teacher_prob: float | None = None) -> np.ndarray | None:
        """Evidence (if ``evidence``) then the transition; returns the predictive the evidence
        was scored by."""
        pred = None
        advanced: tuple = ()
        if evidence:
            pred, advanced = self._evidence(s, a, (r, s2, term, trunc), teacher_prob)
        self._par(lambda k: None if k in advanced else self.groups[k].engine.advance(s, a, r, s2, term, trunc),
                  range(len(self.groups)))
        self._cache = None
        return pred

    def _evidence(self, s: int, a: int, transition: tuple | None = None,
                  teacher_prob: float | None = None) -> tuple[np.ndarray, tuple]:
        """Score action a at s and condition on it; with ``transition``, the compiled engines also
        advance (in the same pass). ``teacher_prob``: the teacher's own probability of a, when the
        history records it (for the misspecification check). Returns (the predictive, the groups
        that advanced)."""
        pred = self._predict(s, evidence=a, transition=transition)
        advanced = getattr(self, "_advanced", ()) if transition is not None else ()
        self._advanced = ()
        self.mix_log_loss.append(-math.log2(pred[a]))
        fired = self.predictive_check.update(pred, s, a, teacher_prob)
        done = self._fused
        self._par(lambda k: None if k in done else self._add_loglik(k, a), range(len(self.groups)))
        self._fused = ()
        self._cache = None   # the weights changed
        if self.family is not None:
            self.family.evidence(s, a)
        self.n_evidence += 1
        self._act_age += 1
        for k, m in getattr(self, "_fused_max", {}).items():
            self._lwmax[k] = (self.logw[k], self.n_evidence, m)
        self._fused_max = {}
        if fired:
            warnings.warn(MisspecificationWarning(self.predictive_check.message()), stacklevel=4)
        return pred, advanced

    def _add_loglik(self, k: int, a: int) -> None:
        eng = self.groups[k].engine
        if getattr(eng, "backend", None) == "numba":
            eng.add_loglik(a, self.logw[k])
        else:
            self.logw[k] += eng.loglik(a)

    def predict_history(self, history: Any, *, progress: bool = False, watch: Sequence[str | Program] = (),
                        start: int = 0, watch_equivalent: bool = False) -> np.ndarray:
        """Teacher-forced fast path: the predictive before every step of ``history`` ([T, A]),
        conditioning the mixture on it (identical to the step loop of ``action_probs`` then
        ``observe(..., intervention=False)``).

        ``watch``: programs whose class posterior mass is recorded after every step, in
        ``self.watch_trace`` ([T, len(watch)]). ``start``: begin at that step (the mixture has
        already seen the steps before it); rows before ``start`` of the result are not filled.
        ``watch_equivalent``: also record, in ``self.watch_equivalent_trace`` [T], the posterior
        mass of the hypotheses whose action distributions equalled the first watched program's
        (to 1e-9) at every step so far -- the programs this history cannot tell from it."""
        self._check_history(history)
        T = len(history)
        out = np.full((T, self.n_actions), np.nan)
        obs = np.asarray(history.obs).astype(np.int64).reshape(T)
        act = np.asarray(history.action).astype(np.int64)
        rew = np.asarray(history.reward, dtype=np.float64)
        term = np.asarray(history.terminated, dtype=bool)
        trunc = np.asarray(history.truncated, dtype=bool)
        # the teacher's own probability of each action it took (the history format records the
        # exact distributions): the misspecification check then knows the teacher's log-loss
        tprob = None
        if T:
            tprob = np.asarray(history.teacher_probs, dtype=np.float64)[np.arange(T), act]
            if not (np.all(np.isfinite(tprob)) and np.all(tprob > 0)):
                tprob = None
        nxt = np.empty(T, dtype=np.int64)
        nxt[:-1] = obs[1:]
        done = np.flatnonzero(term | trunc)
        for t in done:
            try:
                nxt[t] = int(np.asarray(history.next_obs(int(t))).reshape(()))
            except KeyError:   # a terminal step's successor is never bootstrapped on (checked above)
                nxt[t] = obs[t]
        if T and not (term[-1] or trunc[-1]):
            try:
                nxt[-1] = int(np.asarray(history.next_obs(T - 1)).reshape(()))
            except (KeyError, IndexError):
                nxt[-1] = -1  # the successor of the last step was not recorded
        watched = [self._class_rows(w) for w in watch]
        self.watch_trace = np.zeros((T, len(watched)))
        agree = None
        if watch_equivalent:
            self.watch_equivalent_trace = np.zeros(T)
        if watch_equivalent and watched and watched[0].size:
            rep = int(watched[0][0])
            n_exp = sum(g.engine.n for g in self.groups if g.name != "family")
            agree = np.zeros(self.n_hypotheses, dtype=bool)
            agree[:n_exp] = True
        it = range(T)
        if progress:
            it = tqdm(it, desc="mixture", unit="step", unit_scale=True, mininterval=0.5)
        if not 0 <= start <= T:
            raise ValueError(f"start {start} outside a {T}-step history")
        for t in it:
            if t < start:
                continue
            s = int(obs[t])
            if agree is not None:
                for g in self.groups:
                    g.engine.prepare(s)
                P = np.concatenate([g.engine.all_probs() for g in self.groups if g.name != "family"])
                agree[:P.shape[0]] &= np.abs(P - P[rep][None, :]).max(axis=1) <= 1e-9
            s2 = int(nxt[t])
            if s2 < 0:
                # last step of a history cut mid-episode: evidence only, no transition to learn from
                # (a learner would need the next observation); the state is left before the update
                out[t] = self._evidence_only(s, int(act[t]), None if tprob is None else tprob[t])
            else:
                out[t] = self._step(s, int(act[t]), float(rew[t]), s2, bool(term[t]), bool(trunc[t]), True,
                                    None if tprob is None else tprob[t])
            if watched:
                self.watch_trace[t] = self._watch_masses(watched)
            if agree is not None:
                self.watch_equivalent_trace[t] = self._watch_masses([np.flatnonzero(agree)])[0]
        return out

    def _class_rows(self, program: str | Program) -> np.ndarray:
        info = self.class_info(program)
        if info["family_mass"] > 0:
            raise ValueError("watching classes with family members is not supported; watch explicit programs")
        return np.array(info["hypotheses"], dtype=np.int64)

    def _watch_masses(self, watched: list[np.ndarray]) -> np.ndarray:
        lw = np.concatenate(self.logw)
        m = lw.max()
        logz = m + math.log(float(np.exp(lw - m).sum()))
        return np.array([float(np.exp(lw[r] - logz).sum()) if r.size else 0.0 for r in watched])

    def _evidence_only(self, s: int, a: int, teacher_prob: float | None = None) -> np.ndarray:
        pred, _ = self._evidence(s, a, None, teacher_prob)
        self._cache = None
        return pred

    def _check_history(self, history: Any) -> None:
        if history.n_actions != self.n_actions:
            raise HistoryFitError(f"history has {history.n_actions} actions, the grammar {self.n_actions}")
        obs = np.asarray(history.obs)
        if obs.ndim > 1 and int(np.prod(obs.shape[1:])) != 1:
            raise HistoryFitError(f"history observations have shape {obs.shape[1:]}; the grammar needs state indices")
        if len(history) and (obs.min() < 0 or obs.max() >= self.n_states or np.any(obs != np.round(obs))):
            raise HistoryFitError(f"history observations span {obs.min()}..{obs.max()}, the grammar has {self.n_states} states")
        # a learner bootstraps on the observation after a time-limit truncation: it must be there
        trunc = np.flatnonzero(np.asarray(history.truncated, dtype=bool) & ~np.asarray(history.terminated, dtype=bool))
        have = np.asarray(getattr(history, "final_obs_step", np.zeros(0, np.int64)))
        missing = np.setdiff1d(trunc, have)
        if missing.size:
            shown = ", ".join(map(str, missing[:5])) + (", ..." if missing.size > 5 else "")
            raise HistoryFitError(
                f"{missing.size} of the history's {trunc.size} truncated steps (steps {shown}) lack the observation "
                "that followed them, which the mixture's learning programs bootstrap on; record the history with "
                "learners.recorder (it stores them), or give LearningHistory final_obs={step: observation}")

    def condition(self, history: Any, *, progress: bool = False) -> "Inference":
        """Show the mixture a teacher's history (evidence); returns self."""
        self.predict_history(history, progress=progress)
        return self
