"""Old name of :mod:`evals.multiple_choice`, kept while evals/worldvaluesbench.py (being split
elsewhere) still imports ``model_digest``/``versions`` from it; new code imports
``evals.lmeval`` (those two) or ``evals.multiple_choice`` (the rc/mc family)."""

from evals.lmeval import model_digest, versions  # noqa: F401
