"""Old name of :mod:`evals.lmeval` (the lm-eval wrapper), kept while evals/worldvaluesbench.py
(being split elsewhere) still imports it; new code imports ``evals.lmeval``."""

from evals.lmeval import *  # noqa: F403
from evals.lmeval import _run, simple_evaluate  # noqa: F401
