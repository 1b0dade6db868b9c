"""A small PDDL toolkit: STRIPS + typing + negative preconditions, and a breadth-first planner.

Written here rather than taken from a library on purpose: the Proc2PDDL gold domains (and what
models write) use undeclared types, undeclared predicates and arity slips that every maintained
parser we tried refuses (``pddl`` 0.5.1, ``tarski`` 0.9.1, ``pyperplan`` 2.1, ``unified-planning``
all fail on 4-5 of the 5 sample domains), while the benchmark's own evaluator (pucrs
``pddl-parser`` + a plain BFS) accepts them. This package reproduces that evaluator's semantics
(lenient parsing, grounding order, breadth-first search order) so that its plans match the
published gold plans, adds positions to parse errors and a per-problem time limit.
"""

from evals.pddl.parser import Action, Domain, PDDLParseError, Problem, parse_domain, parse_problem
from evals.pddl.planner import PlanResult, format_step, read_plan, solve, validate_plan

__all__ = [
    "Action",
    "Domain",
    "PDDLParseError",
    "PlanResult",
    "Problem",
    "format_step",
    "parse_domain",
    "parse_problem",
    "read_plan",
    "solve",
    "validate_plan",
]
