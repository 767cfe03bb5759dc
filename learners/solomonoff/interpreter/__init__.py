"""Batched interpreter: every program of a mixture advances one step together, as arrays.

Programs are grouped into *engines*; each engine holds many hypotheses and answers, for the
current observation, (a) every hypothesis' raw action distribution (``all_probs``), (b) the
weighted sum of them (``mix``) and (c) each hypothesis' smoothed log-likelihood of the action
taken (``loglik``); ``advance`` feeds it the transition. No engine loops in Python over its
programs on a step, except ``ThompsonEngine`` (see there). One engine family per module: ``td``,
``fixed``, ``bandit`` (UCB1 and Thompson), ``family``; ``base`` holds what they share (the
backend choice, the compiled entry points, the explicit-rows engine) and ``reductions`` the
action-axis sums in numpy's and BLAS's order.

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
package. ``numba`` (the default when numba is installed) runs ``TDEngine`` and the small engines'
hot path as compiled kernels (``learners/solomonoff/kernels.py``): ``TDEngine.step`` is one
pass per teacher step over blocks of value tables (statistics, every rule's mix and evidence, the updates), split
between ``threads`` workers; ``mix_logw`` / ``add_loglik`` / ``mix_and_evidence`` /
``advance`` are the same pass with parts switched off, so every entry point sums in the same
order. ``all_probs``, ``mix(w, idx)`` and ``loglik`` stay numpy on both (queries, tests).
"""
from learners.solomonoff.interpreter.bandit import ThompsonEngine, UCBEngine
from learners.solomonoff.interpreter.family import FamilyEngine
from learners.solomonoff.interpreter.fixed import FixedEngine
from learners.solomonoff.interpreter.td import TDEngine

__all__ = ["TDEngine", "FixedEngine", "UCBEngine", "ThompsonEngine", "FamilyEngine"]
