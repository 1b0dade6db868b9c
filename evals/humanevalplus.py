"""HumanEval+ (``codex_humanevalplus::tulu``): the :mod:`evals.humaneval` family under its own
result kind (the spec id's task name); the problems hold EvalPlus's extended tests."""

from evals.humaneval import FAMILY_PLUS as FAMILY

__all__ = ["FAMILY"]
