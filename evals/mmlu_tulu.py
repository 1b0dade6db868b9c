r"""MMLU as Tulu 3 reports it (``mmlu:cot::tulu``): 0-shot chain of thought in chat format, the
answer letter extracted from the response, exact match averaged per subject then over subjects.

Tulu 3's MMLU number is OLMES ``mmlu:cot::summarize`` (open-instruct's Tulu 3 eval task list
runs it beside ``mmlu:mc::tulu``; the paper reports 0-shot CoT). OLMES
``oe_eval/configs/tasks.py`` ``mmlu_{sub}:cot::summarize``: test split, chat format, 0 shots,
the description below before the question; the suite ``mmlu:cot::summarize`` averages the 57
subjects' ``exact_match`` with ``primary_metric: macro``.

The user turn: ``"The following are multiple choice questions about <subject with spaces>.
Summarize your reasoning concisely, then conclude with 'Therefore, the answer is: X' where X is
one of A, B, C, or D.\n\n"`` + ``"Question: <q>\n A. <c0>\n B. <c1>\n C. <c2>\n D. <c3>\n"``.

Answer extraction (OLMES MMLU CoT ``_extract_answer``; the summarize config names no
``answer_format_regex``, so the backup cascade decides): the first of these regexes that
``re.search`` finds, its group upper-cased, parentheses removed:
``(?i)therefore,?\s*the\s*answer\s*is:?\s*\(?([A-D])\b``, ``(?i)answer\s*is:?\s*\(?([A-D])\b``,
``(?i)([A-D])\)?\s+is\s+correct``, ``\(([A-D])\)``, ``.*\b([A-D])\b``; none: no answer ("").
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from evals.families import Family, RunOptions, field_texts
from evals.metrics import group_means
from evals.rowschema import require
from evals.spec import TaskSpec

LETTERS = "ABCD"
BACKUPS = tuple(
    re.compile(p)
    for p in (
        r"(?i)therefore,?\s*the\s*answer\s*is:?\s*\(?([A-D])\b",
        r"(?i)answer\s*is:?\s*\(?([A-D])\b",
        r"(?i)([A-D])\)?\s+is\s+correct",
        r"\(([A-D])\)",
        r".*\b([A-D])\b",
    )
)
UNTIL = ("<|im_end|>",)
MAX_GEN_TOKS = 1024  # OLMES' mmlu:cot default budget was not read; see docs/evals/tulu3.md


def description(subject: str) -> str:
    return (
        f"The following are multiple choice questions about {subject.replace('_', ' ')}. "
        "Summarize your reasoning concisely, then conclude with 'Therefore, the answer is: X' "
        "where X is one of A, B, C, or D.\n\n"
    )


def user_turn(row: dict) -> str:
    """The only user turn of one MMLU item."""
    options = "\n".join(f" {LETTERS[i]}. {c}" for i, c in enumerate(row["choices"]))
    return description(row["subject"]) + f"Question: {row['question'].strip()}\n{options}\n"


def extract(response: str) -> str:
    """The answer letter of a response ("" when no pattern matches)."""
    for pattern in BACKUPS:
        found = pattern.search(response)
        if found:
            return re.sub(r"\(|\)", "", found.group(1).upper())
    return ""


def gold_letter(answer: Any, where: str) -> str:
    """cais/mmlu's ``answer`` (0-3) or a letter, as a letter."""
    if isinstance(answer, int) and not isinstance(answer, bool) and 0 <= answer < 4:
        return LETTERS[answer]
    if isinstance(answer, str) and answer.strip().upper() in LETTERS and answer.strip():
        return answer.strip().upper()
    raise ValueError(f"{where}: 'answer' is {answer!r}; expected 0-3 (cais/mmlu) or A-D")


def check_row(row: dict, where: str) -> None:
    require(row, ("question", "subject", "choices", "answer"), where, "MMLU row",
            "cais/mmlu rows: question, subject, choices, answer")  # fmt: skip
    if not isinstance(row["choices"], list) or len(row["choices"]) != 4:
        raise ValueError(f"{where}: 'choices' must list the 4 answer options")
    gold_letter(row["answer"], where)


def rescore(row: dict) -> dict:
    extracted = extract(row["response"])
    return {**row, "extracted": extracted, "exact_match": float(extracted == row["gold"])}


def metrics(rows: list[dict]) -> dict[str, float]:
    """Macro (mean of subjects' exact match; Tulu 3's number), micro, and per subject."""
    if not rows:
        raise ValueError("no predictions to score")
    per = group_means((row["subject"], row["exact_match"]) for row in rows)
    out = {
        "exact_match_macro": sum(per.values()) / len(per),
        "exact_match_micro": sum(r["exact_match"] for r in rows) / len(rows),
        "no_answer": sum(1.0 for r in rows if not r["extracted"]) / len(rows),
        "subjects": float(len(per)),
    }
    out.update({f"exact_match:{s}": v for s, v in per.items()})
    return out


FIELDS = ("subject", "question", "response", "gold")


def recompute_metrics(rows: list[dict], spec: dict[str, Any]) -> dict[str, float]:
    return metrics([rescore({k: r[k] for k in FIELDS}) for r in rows])


def score_rows(predictions: list[dict], where: str) -> list[dict]:
    rows = []
    for number, pred in enumerate(predictions, 1):
        at = f"{where}:{number}"
        require(pred, ("subject", "question", "answer", "response"), at, "prediction")
        gold = gold_letter(pred["answer"], at)
        rows.append(rescore({**{k: pred[k] for k in FIELDS[:3]}, "gold": gold}))
    return rows


def score_file(
    spec: TaskSpec, predictions: Path, data: Path | None, out_dir: Path | None
) -> dict[str, Any]:
    """Score JSONL rows ``subject``, ``question``, ``answer`` (0-3 or A-D), ``response``."""
    from evals import results

    return results.scored_file(spec, "mmlu", score_rows, predictions, data, out_dir)


def evaluate(
    spec: TaskSpec, model_dir: Path, data: Path, out_dir: Path, options: RunOptions
) -> dict[str, Any]:
    """0-shot CoT chat prompts -> greedy generations -> extracted letters -> exact match."""
    from evals import generative

    return generative.evaluate_rows(
        spec, "mmlu", model_dir, data, out_dir, options,
        lambda row: [{"role": "user", "content": user_turn(row)}],
        lambda row, text: rescore({"subject": row["subject"], "question": row["question"],
                                   "response": text, "gold": gold_letter(row["answer"], "data")}),
        metrics, until=UNTIL, default_max_gen_toks=MAX_GEN_TOKS,
        check=generative.check_each(check_row), ids=lambda row: {"subject": row["subject"]},
    )  # fmt: skip


texts = field_texts("question")


FAMILY = Family(
    kind="mmlu", metrics=recompute_metrics, evaluate=evaluate, score=score_file, texts=texts
)

SPECS = [
    TaskSpec(
        task_id="mmlu:cot::tulu",
        dataset="cais/mmlu:all",
        split="test",  # 14,042 questions, 57 subjects, all evaluated (no subsampling)
        fewshot=None,
        prompt_format="olmes_mmlu_cot_summarize_chat",
        normalizations=("olmes_mmlu_cot_backup_regexes",),
        primary_metric="exact_match_macro",
        version=1,
        sample_threshold=10**9,
    )
]
