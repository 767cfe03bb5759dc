"""Theory as pure functions (no I/O): universal codes, mixture regret bounds, hypothesis-space counts.

* ``theory.codes``  -- Elias gamma/delta, truncated binary, prefix codes for rationals, Kraft sums.
* ``theory.bounds`` -- the per-sequence log-loss bound and the expected-KL bound of a Bayes
  mixture over programs (with smoothing and Levin/speed-prior variants).
* ``theory.counts`` -- number of programs by description length (products, trees, families).
* ``theory.compute`` -- FLOPs per step of teachers, the mixture and the AD transformer, and of
  simulating a teacher's learning in a forward pass by the published constructions.
* ``theory.symbolic`` -- the mixture's bounds as sympy expressions in the prior bits and the
  smoothing term.
* ``theory.grammar_graph`` -- counting the programs of a grammar given as a typed networkx graph
  (dynamic programming, sympy generating functions); ``learners.solomonoff.grammar_graph`` builds
  that graph from the mixture's grammar. Nothing here imports the rest of the project.
"""
from importlib import import_module

from theory import bounds, codes, counts  # noqa: F401

__all__ = ["bounds", "codes", "compute", "counts", "symbolic"]

# ``compute`` and ``symbolic`` load sympy, ~0.5 s of start-up (measured) that every script and
# test importing ``theory.bounds`` would otherwise pay: they load on first use.
_LAZY = ("compute", "symbolic")


def __getattr__(name: str):
    if name in _LAZY:
        return import_module(f"theory.{name}")
    raise AttributeError(f"module 'theory' has no attribute {name!r}")
