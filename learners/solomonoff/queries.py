"""What the mixture believes: posterior, most probable programs, the mass of a program's class,
the posterior-mean value table, and the per-sequence bound (a part of ``Mixture``)."""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from learners.solomonoff.hypotheses import HypothesisGroup, engine_for_program
from learners.solomonoff.interpreter import TDEngine
from learners.solomonoff.printer import program_source
from learners.solomonoff.probe import fingerprint_engines
from learners.solomonoff.syntax import Constant, Cyclic, Program, Reactive, Stochastic
from theory import bounds as TB

LN2 = math.log(2.0)


class Queries:
    """Read-only questions about the posterior (see the module docstring)."""

    # ------------------------------------------------------------------------------- beliefs
    def _flat(self, attr: str) -> np.ndarray:
        return np.concatenate([getattr(gr, attr) for gr in self.groups]) if self.groups else np.zeros(0)

    def posterior(self) -> np.ndarray:
        """Posterior mass of every hypothesis (explicit classes, then families), summing to 1."""
        lw = np.concatenate(self.logw)
        w = np.exp(lw - lw.max())
        return w / w.sum()

    @property
    def n_hypotheses(self) -> int:
        return sum(gr.engine.n for gr in self.groups)

    def n_programs(self) -> dict[str, float]:
        """Explicit classes evaluated per step, symbolic classes they hold, and family members."""
        explicit = sum(gr.engine.n for gr in self.groups if gr.name != "family")
        symbolic = int(sum(gr.members.sum() for gr in self.groups if gr.name != "family"))
        return {"explicit_classes": explicit, "symbolic_classes": symbolic,
                "family_members": self.space.n_family_members(), "code_words": self.space.n_code_words}

    def _locate(self, flat: int) -> tuple[HypothesisGroup, int]:
        for gr in self.groups:
            if flat < gr.engine.n:
                return gr, flat
            flat -= gr.engine.n
        raise IndexError(flat)

    def _materialise(self, gr: HypothesisGroup, i: int) -> Program:
        ref = gr.refs[i]
        if ref[0] == "td":
            return self.space.td_program(ref[1])
        if ref[0] == "prog":
            return ref[1]
        if ref[0] == "cyclic":
            fam = i
            return Cyclic(ref[1], self.family.cyclic_map_member(fam))
        d, k = ref[1], ref[2]
        fam = i - self.family.n_cyc
        tab = self.family.reactive_map_member(fam)
        return Reactive(d, k, tuple((int(s), int(a)) for s, a in enumerate(tab) if a != d))

    def map_code_bits(self) -> float:
        """Code length, in bits, of the most probable hypothesis (``-log2`` of its normalised prior
        weight; a merged class or a family counts its total weight)."""
        lw = np.concatenate(self.logw)
        return float(-np.concatenate(self.log_prior)[int(np.argmax(lw))] / LN2)

    def diagnostics(self) -> dict[str, Any]:
        """How well the teacher fits the class: the posterior-predictive check
        (``misspecification``), the bound's slack, and the posterior's concentration."""
        post = self.posterior()
        return {"misspecification": self.predictive_check.report(), "bound": self.bound_report(),
                "map_mass": float(post.max()) if post.size else 0.0, "map_code_bits": self.map_code_bits(),
                "posterior_entropy_bits": float(-(post[post > 0] * np.log2(post[post > 0])).sum())}

    def top(self, k: int = 5) -> list[dict[str, Any]]:
        """The k most probable hypotheses: readable source, bits, posterior mass. A family is shown
        by its most probable member, with that member's own mass."""
        post = self.posterior()
        lw = np.log(np.maximum(post, 1e-300))
        cand = []
        order = np.argsort(-post)[: max(k * 3, k + 10)]
        for flat in order:
            gr, i = self._locate(int(flat))
            prog = self._materialise(gr, i)
            mass = float(post[flat])
            bits = float(gr.bits[i])
            class_bits = float(-gr.log2w[i])
            if gr.name == "family":
                if isinstance(prog, Cyclic):
                    mass = float(np.exp(lw[flat] + self.family.cyclic_member_log_post(i, prog.seq)))
                else:
                    tab = np.full(self.n_states, prog.default)
                    for s, a in prog.table:
                        tab[s] = a
                    mass = float(np.exp(lw[flat] + self.family.reactive_member_log_post(i - self.family.n_cyc, tab)))
                bits = self.grammar.bits(prog)
                class_bits = bits
            cand.append({"source": program_source(prog), "bits": bits, "class_bits": class_bits,
                         "members": int(gr.members[i]), "mass": mass, "kind": gr.name})
        cand.sort(key=lambda c: -c["mass"])
        return cand[:k]

    def format_top(self, k: int = 5) -> str:
        rows = self.top(k)
        w = max((len(r["source"]) for r in rows), default=0)
        return "\n".join(f"{r['source']:<{w}}  {r['bits']:.1f} bits  p={r['mass']:.3g}" for r in rows)

    # ---- equivalence classes ---------------------------------------------------------------
    def parse(self, text: str | Program) -> Program:
        """Parse program text (ProgramParseError on bad text; ValueError if not in this grammar)."""
        if isinstance(text, str):
            return self.grammar.parse(text)
        self.grammar.check(text)
        return text

    def _fingerprint_program(self, p: Program) -> np.ndarray | None:
        eng = engine_for_program(p, self.grammar, self.smoothing)
        if eng is None:
            return None
        return fingerprint_engines([eng], self.probes, self.n_actions)[0][0]

    def class_mass(self, program: str | Program) -> float:
        """Posterior mass of the class of programs equivalent to ``program`` (0.0 when no
        equivalent program is in the mixture). Program text is parsed (ProgramParseError)."""
        return self.class_info(program)["mass"]

    def class_info(self, program: str | Program) -> dict[str, Any]:
        p = self.parse(program)
        post = self.posterior()
        mass, found = 0.0, []
        if self.fingerprints is not None:
            fp = self._fingerprint_program(p)
            if fp is not None:
                hit = np.flatnonzero((self.fingerprints == fp[None, :]).all(axis=1))
                for h in hit:
                    mass += float(post[h])
                    found.append(int(h))
        else:
            # no dedup: exact program match among explicit hypotheses
            for flat in range(self.n_hypotheses):
                gr, i = self._locate(flat)
                if gr.name != "family" and self._materialise(gr, i) == p:
                    mass += float(post[flat])
                    found.append(flat)
        fam = self._family_mass(p, post)
        return {"program": program_source(p), "mass": mass + fam, "hypotheses": found, "family_mass": fam,
                "bits": self.grammar.bits(p)}

    def _family_mass(self, p: Program, post: np.ndarray) -> float:
        """Mass of family members equivalent to a deterministic stateless program."""
        fam = self.family
        if fam is None:
            return 0.0
        off = self.n_hypotheses - fam.n
        lw = np.log(np.maximum(post[off:], 1e-320))
        S = self.n_states
        const = None
        if isinstance(p, Constant):
            const = p.action
        elif isinstance(p, Stochastic) and sum(1 for c in p.counts if c) == 1:
            const = int(np.argmax(p.counts))
        elif isinstance(p, Cyclic) and len(set(p.seq)) == 1:
            const = p.seq[0]
        elif isinstance(p, Reactive) and not p.table:
            const = p.default
        table = None
        if const is not None:
            table = np.full(S, const)
        elif isinstance(p, Reactive):
            table = np.full(S, p.default)
            for s, a in p.table:
                table[s] = a
        total = 0.0
        for f in range(fam.n_cyc):
            clock, L = fam.cyclic[f]
            if const is not None:
                seq = [const] * L
            elif isinstance(p, Cyclic) and p.clock == clock and L % _min_period(p.seq) == 0:
                base = p.seq[:_min_period(p.seq)]
                seq = list(base) * (L // len(base))
            else:
                continue
            total += float(np.exp(lw[f] + fam.cyclic_member_log_post(f, seq)))
        if table is not None:
            for f in range(fam.n_react):
                total += float(np.exp(lw[fam.n_cyc + f] + fam.reactive_member_log_post(f, table)))
        return total

    # ---- values --------------------------------------------------------------------------------
    def value_table(self) -> tuple[np.ndarray, float]:
        """Posterior-mean value table [S, A] over the TD programs, and their total posterior mass."""
        for k, gr in enumerate(self.groups):
            if gr.name == "td":
                lw_all = np.concatenate(self.logw)
                m = lw_all.max()
                w = np.exp(self.logw[k] - m)
                total = float(np.exp(lw_all - m).sum())
                eng: TDEngine = gr.engine
                W = np.bincount(eng.values_of_variants(), weights=w, minlength=eng.n_tables)
                if W.sum() == 0:
                    return np.zeros((self.n_states, self.n_actions)), 0.0
                V = np.einsum("t,sat->sa", W / W.sum(), eng.Q)
                return V, float(W.sum() / total)
        return np.zeros((self.n_states, self.n_actions)), 0.0

    # ---- the bound -------------------------------------------------------------------------
    def bound_report(self) -> dict[str, Any]:
        """Per-sequence bound of every hypothesis h: ``L_mix <= L_h + bits_h + log2 Z`` with L_h its
        (smoothed) log-loss on the evidence so far and bits_h its (merged) description length."""
        L_mix = float(np.sum(self.mix_log_loss))
        lw = np.concatenate(self.logw)
        lp = np.concatenate(self.log_prior)
        L_h = (lp - lw) / LN2
        bits_h = -self._flat("log2w")
        slack = TB.bound_slack(L_mix, L_h, bits_h, self.log2_normaliser)
        i = int(np.argmin(slack))
        return {"steps": self.n_evidence, "mixture_log_loss_bits": L_mix, "min_slack_bits": float(slack[i]),
                "tightest": i, "log2_normaliser": self.log2_normaliser, "smoothing": self.smoothing}

    def check_bound(self, tol: float = 1e-6) -> dict[str, Any]:
        rep = self.bound_report()
        if rep["min_slack_bits"] < -tol:
            raise AssertionError(f"mixture bound violated by {-rep['min_slack_bits']:.3g} bits after "
                                 f"{rep['steps']} steps (hypothesis {rep['tightest']})")
        return rep

    def summary(self) -> dict[str, Any]:
        """What a result file records of the mixture: its space, its size, and (once it has seen
        evidence) whether the teacher looked inside its class."""
        return {"space": self.space.summary(), "programs": self.n_programs(), "dedup": self.dedup_stats,
                "smoothing": self.smoothing, "evidence_steps": self.n_evidence,
                "variants": list(self.grammar.variants), "misspecification": self.predictive_check.report()}


def _min_period(seq: Sequence[int]) -> int:
    L = len(seq)
    for d in range(1, L + 1):
        if L % d == 0 and all(seq[i] == seq[i % d] for i in range(L)):
            return d
    return L
