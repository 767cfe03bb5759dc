"""The idealized imitator: a bounded Solomonoff-style mixture over agent programs.

* ``syntax``      -- typed program trees (TD learners built from parts, bandit index and posterior
                     sampling programs, constant / stochastic / cyclic / reactive policies);
* ``prefix_code`` -- their prefix-free code words (exact description bits);
* ``printer``, ``parser`` -- program source text, both ways;
* ``grammar``     -- ``Grammar``: which programs exist for a space, and their description lengths;
* ``enumerate``   -- every program up to a bit budget (and Levin Kt budget), symbolic merging;
* ``probe``       -- behavioural deduplication on fixed probe histories (weights added);
* ``semantics``   -- the reference interpreter (one program, one table) = the definition;
* ``interpreter`` -- the batched interpreter (all programs as arrays, shared value tables), one
                     engine family per module; ``kernels`` its compiled (numba) passes;
* ``hypotheses``  -- the mixture's engines built from a program space, merged when equivalent;
* ``inference``   -- predictive and Bayes' rule on the teacher's actions;
* ``queries``     -- posterior, top programs, class mass, value table, the bound report;
* ``mixture``     -- ``Mixture``, the Imitator, made of the three above;
* ``misspecification`` -- the check, while it predicts, that the teacher is in the class
                     (``Mixture.diagnostics()``, ``MisspecificationWarning``);
* ``checks``      -- ``assert_bound`` (called on every mixture run in tests and experiments);
* ``draw``        -- teachers drawn from the grammar and the registered teacher that runs them.
"""
from learners.solomonoff.enumerate import BudgetError, ProgramSpace, enumerate_programs
from learners.solomonoff.grammar import Grammar
from learners.solomonoff.mixture import Mixture
from learners.solomonoff.parser import ProgramParseError, parse_program
from learners.solomonoff.printer import program_source

__all__ = ["Mixture", "Grammar", "enumerate_programs", "ProgramSpace", "parse_program", "program_source",
           "BudgetError", "ProgramParseError"]
