"""Theory as pure functions (no I/O): universal codes, mixture regret bounds, hypothesis-space counts.

* ``theory.codes``  -- Elias gamma/delta, truncated binary, prefix codes for rationals, Kraft sums.
* ``theory.bounds`` -- the per-sequence log-loss bound and the expected-KL bound of a Bayes
  mixture over programs (with smoothing and Levin/speed-prior variants).
* ``theory.counts`` -- number of programs by description length (products, trees, families).
"""
from theory import bounds, codes, counts  # noqa: F401

__all__ = ["bounds", "codes", "counts"]
