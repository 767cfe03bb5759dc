"""Carry a mixture's beliefs into the grammar of another space (a transplant to a new kind of task).

A mixture that watched a teacher learn on one env believes things about the teacher's *algorithm*
(its TD target, step size, discount, exploration), which are written the same way whatever the
env's state and action counts; and things that are tied to its space (a constant action, a table
of actions per state). Moved to an env of another size or kind, the first kind of belief should
travel and the second cannot.

``transplant_beliefs(source, target)`` sets the target mixture's weights to

    w'(h) = the source's posterior mass on programs whose text is in the target's class h,
            or, for a class nothing is carried to, (the remaining mass) * prior(h) / (their prior mass),

where "the remaining mass" is what the source put on programs that have no counterpart in the
target grammar (or lie beyond the ``top`` most probable source hypotheses that are looked up). A
source that watched nothing, moved into its own grammar, gives back exactly its prior.
Nothing is tuned: the transferred part is the source's posterior itself, and what cannot be
transferred is spread as the target's prior spreads it, so every target program keeps a weight
above zero (a prior that rules a program out could never learn it back).

The target's programs are not touched (they start learning the new task from scratch), nor is
its prior (``log_prior``): the bound and its reports keep referring to the target's own prior.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from learners.solomonoff.mixture import Mixture
from learners.solomonoff.parser import ProgramParseError


@dataclass
class Carried:
    """Which of the source's beliefs have a counterpart in a target grammar: target class index and
    mass, per carried program. Depends on the target's grammar and budgets only, not on its task,
    so one serves every task of a target space (mixtures built from the same space)."""

    n_target: int
    classes: list[int] = field(default_factory=list)
    masses: list[float] = field(default_factory=list)
    programs: list[str] = field(default_factory=list)

    @property
    def mass(self) -> float:
        return float(min(1.0, sum(self.masses)))


def carry(source: Mixture, target: Mixture, *, cover: float = 0.999, top: int = 200) -> Carried:
    """Look up the source's most probable programs in the target grammar, until they cover
    ``cover`` of the source's mass (at most ``top`` of them; each look-up fingerprints a program)."""
    out = Carried(target.n_hypotheses)
    seen = 0.0
    for r in source.top(top):
        if seen >= cover or r["mass"] <= 0.0:
            break
        seen += r["mass"]
        if r["kind"] == "family":
            continue  # a family member is a table of actions per state: tied to the source's space
        try:
            info = target.class_info(r["source"])
        except (ProgramParseError, ValueError):
            continue  # tied to the source's space: no counterpart in the target grammar
        if not info["hypotheses"]:
            continue  # outside the target's budget
        out.classes.append(int(info["hypotheses"][0]))
        out.masses.append(float(r["mass"]))
        out.programs.append(r["source"])
    return out


def transplant_beliefs(source: Mixture, target: Mixture, *, carried: Carried | None = None,
                       cover: float = 0.999, top: int = 200) -> dict[str, Any]:
    """Set ``target``'s weights from ``source``'s posterior (see the module docstring) and restart
    its programs; ``carried`` (from ``carry``) skips the look-ups. Returns what was carried."""
    c = carried if carried is not None else carry(source, target, cover=cover, top=top)
    n = target.n_hypotheses
    if c.n_target != n:
        raise ValueError(f"the carried beliefs were looked up in a mixture of {c.n_target} hypotheses, "
                         f"this one has {n}")
    w = np.zeros(n)
    np.add.at(w, np.asarray(c.classes, dtype=np.int64), np.asarray(c.masses, float))
    total = c.mass
    if w.sum() > 0:
        w *= total / w.sum()
    # The mass not carried is spread as the prior spreads it over the classes nothing was carried to.
    prior = np.exp(np.concatenate(target.log_prior))
    rest = np.where(w > 0, 0.0, prior / prior.sum())
    if rest.sum() > 0:
        w = w + (1.0 - total) * rest / rest.sum()
    logw = np.log(np.maximum(w, 1e-320))
    out, off = [], 0
    for lw in target.logw:
        out.append(logw[off:off + lw.size].copy())
        off += lw.size
    target.logw = out
    target.reset_programs()
    return {"carried_mass": total, "prior_mass": 1.0 - total,
            "programs": [{"program": p, "mass": m} for p, m in zip(c.programs, c.masses)]}


__all__ = ["Carried", "carry", "transplant_beliefs"]
