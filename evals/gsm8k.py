r"""GSM8K: gold parsing, answer extraction, the 8-shot CoT chat prompt, and exact-match scoring
of responses produced anywhere (no model needed).

Two answer rules, each the spec's first normalization (so the spec hash names the rule):

* ``tulu_last_number_string`` (``gsm8k:cot::tulu``): Tulu 3's rule. Follows OLMES
  ``oe_eval/tasks/oe_eval_tasks/gsm8k.py`` (``GSM8K._extract_answer`` without answer regexes and
  ``_clean_short_answer`` for the gold) and open-instruct ``open_instruct/ground_truth_utils.py``
  (``verify_gsm8k_sample``, later ``GSM8KVerifier.__call__``, as of the Tulu 3 release): drop
  commas between digits, take the LAST match of ``[-+]?\d*\.\d+|\d+`` (a sign is kept only on
  a decimal: that alternation binds ``[-+]?`` to the decimal branch), compare as lower-cased
  strings; no number: the response itself is compared. So ``12.0`` != ``12``.
* ``answer_is_else_last_number`` (``gsm8k:cot::answer_is``): the number after "answer is", else
  the last number, compared numerically (``12.0`` == ``12``, signs kept). Our earlier rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evals.families import Family, RunOptions, field_texts
from evals.formats import multiturn
from evals.spec import TaskSpec

# Tulu 3's generation settings: greedy, 512 new tokens, stop at the end of the assistant turn
# or where a model starts the next "Question:" itself.
UNTIL = ("Question:", "<|im_end|>")
MAX_GEN_TOKS = 512
# OLMES's base-model GSM8K (gsm8k::olmes): the plain-text task's stop sequences, 512 new tokens.
OLMES_UNTIL = ("Question:", "</s>", "<|im_end|>", "\n\n")

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
    """``answer_is_else_last_number``: the number after "answer is", else the last number."""
    match = _ANSWER_IS.search(response)
    if match:
        return normalize_number(match.group(1))
    numbers = _NUMBER.findall(response.replace(",", ""))
    return normalize_number(numbers[-1]) if numbers else None


def gold_answer(solution: str, rule: str = "tulu_last_number_string") -> str:
    """The gold of a GSM8K solution under ``rule``: what follows ``####``, normalized."""
    match = _GOLD.search(solution.strip())
    if not match:
        raise ValueError(f"GSM8K solution has no '#### <answer>' line: {solution[-60:]!r}")
    return RULES[rule].gold(match.group(1))


# --- Tulu 3's rule (see the module docstring for the references it follows) ---
_DIGIT_COMMA = re.compile(r"(\d),(\d)")
# One alternation, as in the references: the optional sign belongs to the decimal branch only.
_TULU_NUMBER = re.compile(r"[-+]?\d*\.\d+|\d+")


def tulu_last_number(text: str) -> str | None:
    """The last number of ``text`` after dropping commas between digits (None: no number)."""
    numbers = _TULU_NUMBER.findall(_DIGIT_COMMA.sub(r"\1\2", text))
    return numbers[-1] if numbers else None


def tulu_gold(text: str) -> str:
    """OLMES's cleaned gold: the same last-number extraction on the short answer."""
    text = text.strip()
    number = tulu_last_number(text)
    return text if number is None else number


def tulu_match(response: str, extracted: str | None, gold: str) -> bool:
    """String equality, case-insensitive; with no number the whole response is compared."""
    prediction = response if extracted is None else extracted
    return prediction.lower() == gold.lower()


def _numeric_match(response: str, extracted: str | None, gold: str) -> bool:
    return extracted == gold


@dataclass(frozen=True)
class Rule:
    """An answer rule: extraction from a response, gold normalization, and the comparison."""

    extract: Callable[[str], str | None]
    gold: Callable[[str], str]
    match: Callable[[str, str | None, str], bool]


RULES: dict[str, Rule] = {
    "tulu_last_number_string": Rule(tulu_last_number, tulu_gold, tulu_match),
    "answer_is_else_last_number": Rule(extract_answer, normalize_number, _numeric_match),
}


def rule_of(spec: TaskSpec | dict[str, Any]) -> str:
    """The answer rule a GSM8K spec names (its first normalization)."""
    norms = spec.normalizations if isinstance(spec, TaskSpec) else spec["normalizations"]
    if not norms or norms[0] not in RULES:
        raise ValueError(
            f"GSM8K spec {getattr(spec, 'task_id', '')!r} names no known answer rule in "
            f"normalizations {list(norms)}; known: {', '.join(RULES)}"
        )
    return norms[0]


def user_turn(question: str) -> str:
    return f"Question: {question}\nAnswer:"


def chat_messages(question: str, shots: list[dict]) -> list[dict[str, str]]:
    """8-shot CoT in chat form: each exemplar is a user turn and its CoT answer ("So the answer
    is N.") as the assistant turn; the question is the last user turn."""
    pairs = [(user_turn(shot["question"]), shot["cot_answer"]) for shot in shots]
    return multiturn(pairs, user_turn(question))


def plain_prompt(question: str, shots: list[dict]) -> str:
    """OLMES's plain 8-shot CoT (``gsm8k::olmes``): each exemplar ``Question: <q>\\nAnswer:
    <cot answer>``, blocks joined by a blank line, the question last, ending ``Answer:``."""
    blocks = [f"{user_turn(shot['question'])} {shot['cot_answer']}" for shot in shots]
    return "\n\n".join([*blocks, user_turn(question)])


def score_rows(
    predictions: list[dict], gold: dict[str, str], rule: str = "tulu_last_number_string"
) -> list[dict]:
    """Per-instance records ``{question, response, gold, extracted, exact_match}``.

    ``gold`` maps question text to its gold (normalized by ``rule``); a prediction row may
    carry its own ``gold`` (a number) or ``answer`` (a GSM8K solution) instead.
    """
    rows = []
    for number, pred in enumerate(predictions, 1):
        if "question" not in pred or "response" not in pred:
            raise ValueError(f"predictions line {number}: needs 'question' and 'response'")
        if "gold" in pred:
            target = RULES[rule].gold(str(pred["gold"]))
        elif "answer" in pred:
            target = gold_answer(pred["answer"], rule)
        elif pred["question"] in gold:
            target = gold[pred["question"]]
        else:
            raise ValueError(
                f"predictions line {number}: question not in the dataset given with --data "
                "and no 'gold'/'answer' field"
            )
        rows.append({"question": pred["question"], "response": pred["response"], "gold": target})
    return [rescore(row, rule) for row in rows]


def rescore(row: dict, rule: str = "tulu_last_number_string") -> dict:
    """A record with ``extracted`` and ``exact_match`` (re)computed from its response."""
    chosen = RULES[rule]
    extracted = chosen.extract(row["response"])
    hit = chosen.match(row["response"], extracted, row["gold"])
    return {**row, "extracted": extracted, "exact_match": float(hit)}


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
    rule = rule_of(spec)
    return metrics([rescore({k: r[k] for k in fields}, rule) for r in rows])


def score_file(
    spec: TaskSpec, predictions: Path, data: Path | None, out_dir: Path | None
) -> dict[str, Any]:
    """Score JSONL ``question``/``response`` rows (gold from ``data`` or each row)."""
    from evals import results, sources

    data_rows = sources.read_jsonl(data) if data else []
    rule = rule_of(spec)
    gold = {row["question"]: gold_answer(row["answer"], rule) for row in data_rows}
    rows = score_rows(sources.read_jsonl(predictions), gold, rule)
    return results.scored_result(
        spec, "gsm8k", rows, predictions=predictions, data=data, data_rows=len(data_rows),
        out_dir=out_dir,
    )  # fmt: skip


def check_row(row: dict, where: str) -> None:
    if "question" not in row or "answer" not in row:
        raise ValueError(f"{where}: GSM8K row needs 'question' and 'answer'")


def evaluate(
    spec: TaskSpec, model_dir: Path, data: Path, out_dir: Path, options: RunOptions
) -> dict[str, Any]:
    """8-shot CoT prompts (chat, or plain text for ``gsm8k::olmes`` and the other base variants)
    -> greedy generations -> exact match; writes the result dir."""
    from evals import generative, sources

    rule = rule_of(spec)
    shots = sources.read_jsonl(sources.bundled(spec.fewshot.file))[: spec.fewshot.n]
    plain = generative.is_plain(spec)
    render = plain_prompt if plain else chat_messages
    return generative.evaluate_rows(
        spec, "gsm8k", model_dir, data, out_dir, options,
        lambda row: render(row["question"], shots),
        lambda row, text: rescore({"question": row["question"], "response": text,
                                   "gold": gold_answer(row["answer"], rule)}, rule),
        metrics, until=OLMES_UNTIL if plain else UNTIL, default_max_gen_toks=MAX_GEN_TOKS,
        check=generative.check_each(check_row), ids=lambda row: {"id": str(row.get("id", ""))},
    )  # fmt: skip


texts = field_texts("question")  # what decontamination matches training data against


FAMILY = Family(
    kind="gsm8k", metrics=recompute_metrics, evaluate=evaluate, score=score_file, texts=texts
)
