"""PopQA as Tulu 3 runs it (``popqa::tulu``): 15-shot, chat format with each shot its own user /
assistant turn, greedy, exact match when any gold alias appears in the output.

OLMES ``popqa::tulu`` (``oe_eval/configs/tasks.py``): the ``popqa`` task with
``use_chat_format`` and ``fewshot_as_multiturn``; the task's defaults: akariasai/PopQA test
split, 15 shots, ``max_gen_toks`` 15, greedy, stop at ``"\\n\\n"``. A shot's user turn is
``Q: <question> A:`` and its assistant turn the gold ``obj``; the query is the last user turn.
The 15 shots are a pool of 16 exemplars, one per PopQA relation template, minus the one of the
query's own template (``prop_id``), in pool order.

Scoring (OLMES ``popqa.py`` ``process_results``): correct when, for some alias ``a`` of
``possible_answers``, ``a``, ``a.lower()`` or ``a.capitalize()`` is a substring of the output
(the output itself is not lower-cased). ``exact_match`` is the mean.

Deviation: the bundled pool (``evals/data/popqa_fewshot_pool.jsonl``) was written for this
project in PopQA's schema, one true fact per template in OLMES' template order; OLMES' own pool
could not be read here, so prompts differ from the reference's in the 15 exemplars.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evals.families import Family, RunOptions, field_texts
from evals.formats import multiturn
from evals.rowschema import require
from evals.spec import FewShotSet, TaskSpec

UNTIL = ("\n\n", "<|im_end|>")
MAX_GEN_TOKS = 15
# n = shots per prompt; the pool file holds 16 (one per template), the query's own left out.
SHOTS = FewShotSet("popqa_fewshot_pool.jsonl", 15, "reprolm:popqa-template-pool")


def aliases(row: dict, where: str) -> list[str]:
    """``possible_answers`` (a JSON string in the released CSV/parquet, or a list)."""
    raw = row.get("possible_answers")
    try:
        values = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        values = None
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValueError(
            f"{where}: 'possible_answers' is {raw!r}; expected a JSON list of answer strings"
        )
    return values


def query(question: str) -> str:
    return f"Q: {question} A:"


def chat_messages(row: dict, pool: list[dict], n_shots: int = 15) -> list[dict[str, str]]:
    """The pool minus the query's template, each shot a user / assistant pair, then the query."""
    shots = [s for s in pool if s["prop_id"] != row.get("prop_id")][:n_shots]
    pairs = [(query(shot["question"]), str(shot["obj"]).strip()) for shot in shots]
    return multiturn(pairs, query(row["question"]))


def match(output: str, golds: list[str]) -> bool:
    """OLMES' alias rule: any alias, lower-cased or capitalized alias is in the output."""
    return any(a in output or a.lower() in output or a.capitalize() in output for a in golds)


def rescore(row: dict) -> dict:
    return {**row, "exact_match": float(match(row["response"], row["aliases"]))}


def metrics(rows: list[dict]) -> dict[str, float]:
    if not rows:
        raise ValueError("no predictions to score")
    return {"exact_match": sum(r["exact_match"] for r in rows) / len(rows)}


def recompute_metrics(rows: list[dict], spec: dict[str, Any]) -> dict[str, float]:
    return metrics([rescore({k: r[k] for k in ("question", "response", "aliases")}) for r in rows])


def check_row(row: dict, where: str) -> None:
    require(row, ("question", "obj", "prop_id", "possible_answers"), where, "PopQA row",
            "akariasai/PopQA rows: question, obj, prop_id, possible_answers, ...")  # fmt: skip
    aliases(row, where)


def pool_rows(spec: TaskSpec) -> list[dict]:
    from evals import sources

    return sources.read_jsonl(sources.bundled(spec.fewshot.file))


def score_file(
    spec: TaskSpec, predictions: Path, data: Path | None, out_dir: Path | None
) -> dict[str, Any]:
    """Score JSONL ``question`` / ``response`` rows (aliases from the row or from ``--data``)."""
    from evals import results, sources

    data_rows = sources.read_jsonl(data) if data else []
    by_question = {r["question"]: aliases(r, f"{data}:{i + 1}") for i, r in enumerate(data_rows)}
    rows = []
    for number, pred in enumerate(sources.read_jsonl(predictions), 1):
        at = f"{predictions}:{number}"
        if "question" not in pred or "response" not in pred:
            raise ValueError(f"{at}: needs 'question' and 'response'")
        if "possible_answers" in pred:
            golds = aliases(pred, at)
        elif pred["question"] in by_question:
            golds = by_question[pred["question"]]
        else:
            raise ValueError(f"{at}: no 'possible_answers' and the question is not in --data")
        rows.append(rescore({"question": pred["question"], "response": pred["response"],
                             "aliases": golds}))  # fmt: skip
    return results.scored_result(
        spec, "popqa", rows, predictions=predictions, data=data, data_rows=len(data_rows),
        out_dir=out_dir,
    )  # fmt: skip


def evaluate(
    spec: TaskSpec, model_dir: Path, data: Path, out_dir: Path, options: RunOptions
) -> dict[str, Any]:
    """15-shot multi-turn chat prompts -> greedy 15-token answers -> alias exact match."""
    from evals import generative

    pool = pool_rows(spec)
    return generative.evaluate_rows(
        spec, "popqa", model_dir, data, out_dir, options,
        lambda row: chat_messages(row, pool, spec.fewshot.n),
        lambda row, text: rescore({"question": row["question"], "response": text,
                                   "aliases": aliases(row, "data")}),
        metrics, until=UNTIL, default_max_gen_toks=MAX_GEN_TOKS,
        check=generative.check_each(check_row), ids=lambda row: {"id": row.get("id")},
    )  # fmt: skip


texts = field_texts("question")


FAMILY = Family(
    kind="popqa", metrics=recompute_metrics, evaluate=evaluate, score=score_file, texts=texts
)

SPECS = [
    TaskSpec(
        task_id="popqa::tulu",
        dataset="akariasai/PopQA",
        split="test",  # 14,267 questions, all evaluated
        fewshot=SHOTS,
        prompt_format="olmes_popqa_15shot_multiturn_chat",
        normalizations=("olmes_alias_substring",),
        primary_metric="exact_match",
        version=1,
        sample_threshold=10**9,
    )
]
