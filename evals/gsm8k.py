"""GSM8K (``gsm8k:cot::tulu``): gold parsing, answer extraction, the 8-shot CoT chat prompt,
and exact-match scoring of responses produced anywhere (no model needed)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from evals.families import Family, RunOptions
from evals.spec import TaskSpec

# Tulu 3's generation settings: greedy, 512 new tokens, stop at the end of the assistant turn
# or where a model starts the next "Question:" itself.
UNTIL = ("Question:", "<|im_end|>")
MAX_GEN_TOKS = 512

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_ANSWER_IS = re.compile(r"answer is\s*:?\s*\$?\s*(-?[\d,]*\.?\d+)", re.IGNORECASE)
_GOLD = re.compile(r"####\s*(.+?)\s*$")


def normalize_number(text: str) -> str:
    """Canonical string of a number: commas removed, a trailing '.' or '.0' dropped."""
    text = text.replace(",", "").strip().rstrip(".")
    try:
        value = float(text)
    except ValueError:
        return text
    return str(int(value)) if value == int(value) else repr(value)


def extract_answer(response: str) -> str | None:
    """Tulu 3 / OLMES extraction: the number after "answer is", else the last number."""
    match = _ANSWER_IS.search(response)
    if match:
        return normalize_number(match.group(1))
    numbers = _NUMBER.findall(response.replace(",", ""))
    return normalize_number(numbers[-1]) if numbers else None


def gold_answer(solution: str) -> str:
    """The gold number of a GSM8K solution: what follows ``####``, commas removed."""
    match = _GOLD.search(solution.strip())
    if not match:
        raise ValueError(f"GSM8K solution has no '#### <answer>' line: {solution[-60:]!r}")
    return normalize_number(match.group(1))


def user_turn(question: str) -> str:
    return f"Question: {question}\nAnswer:"


def chat_messages(question: str, shots: list[dict]) -> list[dict[str, str]]:
    """8-shot CoT in chat form: each exemplar is a user turn and its CoT answer ("So the answer
    is N.") as the assistant turn; the question is the last user turn."""
    messages = []
    for shot in shots:
        messages.append({"role": "user", "content": user_turn(shot["question"])})
        messages.append({"role": "assistant", "content": shot["cot_answer"]})
    messages.append({"role": "user", "content": user_turn(question)})
    return messages


def score_rows(predictions: list[dict], gold: dict[str, str]) -> list[dict]:
    """Per-instance records ``{question, response, gold, extracted, exact_match}``.

    ``gold`` maps question text to its gold number; a prediction row may carry its own
    ``gold`` (a number) or ``answer`` (a GSM8K solution) instead.
    """
    rows = []
    for number, pred in enumerate(predictions, 1):
        if "question" not in pred or "response" not in pred:
            raise ValueError(f"predictions line {number}: needs 'question' and 'response'")
        if "gold" in pred:
            target = normalize_number(str(pred["gold"]))
        elif "answer" in pred:
            target = gold_answer(pred["answer"])
        elif pred["question"] in gold:
            target = gold[pred["question"]]
        else:
            raise ValueError(
                f"predictions line {number}: question not in the dataset given with --data "
                "and no 'gold'/'answer' field"
            )
        rows.append({"question": pred["question"], "response": pred["response"], "gold": target})
    return [rescore(row) for row in rows]


def rescore(row: dict) -> dict:
    """A record with ``extracted`` and ``exact_match`` (re)computed from its response."""
    extracted = extract_answer(row["response"])
    return {**row, "extracted": extracted, "exact_match": float(extracted == row["gold"])}


def metrics(records: list[dict]) -> dict[str, float]:
    """exact_match (mean) and the share of responses with no number at all."""
    if not records:
        raise ValueError("no predictions to score")
    n = len(records)
    return {
        "exact_match": sum(r["exact_match"] for r in records) / n,
        "no_answer": sum(float(r["extracted"] is None) for r in records) / n,
    }


def recompute_metrics(rows: list[dict], spec: dict[str, Any]) -> dict[str, float]:
    """Metrics from saved rows: only question, response and gold are read."""
    fields = ("question", "response", "gold")
    return metrics([rescore({k: r[k] for k in fields}) for r in rows])


def score_file(
    spec: TaskSpec, predictions: Path, data: Path | None, out_dir: Path | None
) -> dict[str, Any]:
    """Score JSONL ``question``/``response`` rows (gold from ``data`` or each row)."""
    from evals import results, sources

    data_rows = sources.read_jsonl(data) if data else []
    gold = {row["question"]: gold_answer(row["answer"]) for row in data_rows}
    rows = score_rows(sources.read_jsonl(predictions), gold)
    return results.scored_result(
        spec, "gsm8k", rows, predictions=predictions, data=data, data_rows=len(data_rows),
        out_dir=out_dir,
    )  # fmt: skip


def evaluate(
    spec: TaskSpec, model_dir: Path, data: Path, out_dir: Path, options: RunOptions
) -> dict[str, Any]:
    """8-shot CoT chat prompts -> greedy generations -> exact match; writes the result dir."""
    from evals import generative, sources
    from evals.spec import resolve

    data_rows = sources.read_jsonl(data)
    for number, row in enumerate(data_rows, 1):
        if "question" not in row or "answer" not in row:
            raise ValueError(f"{data}:{number}: GSM8K row needs 'question' and 'answer'")
    resolved = resolve(spec, data, len(data_rows))
    shots = sources.read_jsonl(sources.bundled(spec.fewshot.file))[: spec.fewshot.n]
    indices = generative.sampled(spec, len(data_rows), options.limit)
    requests, texts, harness = generative.run(
        spec, Path(model_dir), out_dir, options,
        [chat_messages(data_rows[i]["question"], shots) for i in indices],
        until=UNTIL, default_max_gen_toks=MAX_GEN_TOKS,
        extra=lambda k: {"index": indices[k], "id": str(data_rows[indices[k]].get("id", ""))},
    )  # fmt: skip
    rows = [
        rescore(
            {
                "doc_id": r["doc_id"],
                "index": r["index"],
                "question": data_rows[r["index"]]["question"],
                "response": text,
                "gold": gold_answer(data_rows[r["index"]]["answer"]),
            }
        )
        for r, text in zip(requests, texts, strict=True)
    ]
    return generative.write(
        spec, "gsm8k", resolved, harness, model_dir, out_dir, options.limit, rows, metrics(rows)
    )


def texts(data: Path) -> list[str]:
    """The question of each row (what decontamination matches training data against)."""
    from evals import sources

    return [row["question"] for row in sources.read_jsonl(data)]


FAMILY = Family(
    kind="gsm8k", metrics=recompute_metrics, evaluate=evaluate, score=score_file, texts=texts
)
