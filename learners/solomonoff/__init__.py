"""The idealized imitator: a bounded Solomonoff-style mixture over agent programs.

* ``grammar``     -- typed program trees (TD learners built from parts, bandit index and posterior
                     sampling programs, constant / stochastic / cyclic / reactive policies), their
                     prefix code (exact description bits), source text and parser;
* ``enumerate``   -- every program up to a bit budget (and Levin Kt budget), symbolic merging;
* ``probe``       -- behavioural deduplication on fixed probe histories (weights added);
* ``semantics``   -- the reference interpreter (one program, one table) = the definition;
* ``interpreter`` -- the batched interpreter (all programs as arrays, shared value tables);
* ``mixture``     -- ``Mixture``, the Imitator: posterior in log space, queries, the bound;
* ``checks``      -- ``assert_bound`` (called on every mixture run in tests and experiments);
* ``draw``        -- teachers drawn from the grammar and the registered teacher that runs them.
"""
from learners.solomonoff.enumerate import BudgetError, ProgramSpace, enumerate_programs
from learners.solomonoff.grammar import Grammar, ProgramParseError, parse_program, program_source
from learners.solomonoff.mixture import HistoryMismatch, Mixture

__all__ = ["Mixture", "Grammar", "enumerate_programs", "ProgramSpace", "parse_program", "program_source",
           "BudgetError", "HistoryMismatch", "ProgramParseError"]
