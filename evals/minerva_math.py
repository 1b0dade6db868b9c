r"""MATH (``minerva_math::tulu``): Tulu 3's 4-shot Minerva CoT in chat form, flex exact match,
macro-averaged over the seven subjects.

Settings (OLMES ``oe_eval/configs/tasks.py`` ``minerva_math_<subject>::tulu`` and
``task_suites.py`` ``minerva_math::tulu``): the test split, every instance (no sampling), the
4 Minerva exemplars (``Minerva:MATH``; bundled as ``minerva_math_4shot.jsonl``) as multi-turn
chat ("Problem:\n<problem>\n\nSolution:" user turns, the worked solution ending "Final Answer:
The final answer is $X$. I hope it is correct." as assistant turns), greedy, 1024 new tokens,
no stop string but the end of the assistant turn; the suite's primary metric is the macro
average over subjects. One spec covers all seven subjects: rows carry their subject
(``type`` as in EleutherAI/hendrycks_math, or ``subject`` as in MATH-500), and the result holds
each subject's numbers besides the macro and micro averages.

The answer check is the shared verifier ``math_flex`` (:mod:`evals.verifiers`), the one RLVR
rewards use; the rules live in :mod:`evals.math_answer`; running and scoring live in
:mod:`evals.minerva_math_family` (apart, so that curate, which imports the specs, never
fingerprints the metric code).
"""

from __future__ import annotations

from pathlib import Path

from evals import math_answer
from evals.formats import multiturn
from evals.spec import FewShotSet, TaskSpec

MAX_GEN_TOKS = 1024
VERIFIER = "math_flex"
SUBJECTS = (
    "algebra", "counting_and_probability", "geometry", "intermediate_algebra", "number_theory",
    "prealgebra", "precalculus",
)  # fmt: skip


SHOTS = FewShotSet("minerva_math_4shot.jsonl", 4, "OLMES:Minerva:MATH (lm-eval minerva_math)")
ALL = 10**9  # OLMES runs every test instance of each subject (none has over 1,500 anyway)
SPECS = [
    TaskSpec(
        task_id="minerva_math::tulu",
        dataset="EleutherAI/hendrycks_math",  # all seven subject configs, test split
        split="test",
        fewshot=SHOTS,
        prompt_format="minerva_math_4shot_chat",
        normalizations=("minerva_final_answer", "hendrycks_strip_string", VERIFIER),
        primary_metric="exact_match_flex",  # macro average over the seven subjects
        version=1,
        sample_threshold=ALL,
    )
]


def subject_key(name: str) -> str:
    """``"Counting & Probability"`` -> ``"counting_and_probability"`` (an unknown subject is an
    error listing the seven)."""
    key = name.strip().lower().replace("&", "and").replace(" ", "_")
    if key not in SUBJECTS:
        raise ValueError(f"unknown MATH subject {name!r}; one of {', '.join(SUBJECTS)}")
    return key


def user_turn(problem: str) -> str:
    return f"Problem:\n{problem}\n\nSolution:"


def chat_messages(problem: str, shots: list[dict]) -> list[dict[str, str]]:
    """Each exemplar as a user turn and its solution as the assistant turn, then the problem."""
    pairs = [(user_turn(shot["problem"]), shot["solution"]) for shot in shots]
    return multiturn(pairs, user_turn(problem))


def equivalence() -> str:
    """The equivalence this environment applies (recorded in the resolved spec)."""
    return "sympy+hendrycks" if math_answer.sympy_available() else "hendrycks"


def check_rows(path: Path, rows: list[dict]) -> None:
    """Every row has ``problem``, a boxed ``solution`` and a known subject."""
    for number, row in enumerate(rows, 1):
        where = f"{path}: row {number}"
        if not isinstance(row.get("problem"), str) or not isinstance(row.get("solution"), str):
            raise ValueError(f"{where}: MATH rows need 'problem' and 'solution' strings")
        subject = row.get("type") or row.get("subject")
        if not isinstance(subject, str):
            raise ValueError(f"{where}: no 'type' (or 'subject') naming the MATH subject")
        try:
            subject_key(subject)
            math_answer.gold_of_solution(row["solution"])
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
