"""IFEval scoring: strict and loose per instruction, per prompt, and the four numbers.

Strict checks the response as is; loose passes an instruction when any of 8 variants passes
(the response; without ``*``; without its first line; without its last line; without both; and
those three without ``*``). An empty (whitespace-only) variant never passes.
"""

from __future__ import annotations

from typing import Any

from evals.ifeval.checkers import build

METRICS = (
    "prompt_level_strict_acc",
    "inst_level_strict_acc",
    "prompt_level_loose_acc",
    "inst_level_loose_acc",
)


def loose_variants(response: str) -> list[str]:
    """The 8 response variants of loose scoring, in the reference's order."""
    lines = response.split("\n")
    without_first = "\n".join(lines[1:]).strip()
    without_last = "\n".join(lines[:-1]).strip()
    without_both = "\n".join(lines[1:-1]).strip()
    trimmed = [without_first, without_last, without_both]
    return [response, response.replace("*", ""), *trimmed, *(t.replace("*", "") for t in trimmed)]


def follows(instruction_id: str, kwargs: dict | None, response: str, *, loose: bool) -> bool:
    """Whether the response follows one instruction (strict, or loose over the 8 variants)."""
    checker = build(instruction_id, kwargs)
    variants = loose_variants(response) if loose else [response]
    return any(v.strip() and checker.check(v) for v in variants)


def score_item(item: dict[str, Any], response: str) -> dict[str, Any]:
    """A prediction record: the item's instructions and per-instruction strict/loose results."""
    ids, kwargs = item["instruction_id_list"], item["kwargs"]
    if len(ids) != len(kwargs):
        raise ValueError(f"{len(ids)} instruction ids but {len(kwargs)} kwargs entries")
    strict = [follows(i, k, response, loose=False) for i, k in zip(ids, kwargs, strict=True)]
    loose = [follows(i, k, response, loose=True) for i, k in zip(ids, kwargs, strict=True)]
    return {
        "key": item.get("key"),
        "prompt": item["prompt"],
        "response": response,
        "instruction_id_list": list(ids),
        "kwargs": list(kwargs),
        "follow_instruction_list_strict": strict,
        "follow_instruction_list_loose": loose,
        "follow_all_instructions_strict": all(strict),
        "follow_all_instructions_loose": all(loose),
    }


def rescore(record: dict[str, Any]) -> dict[str, Any]:
    """A record scored again from its prompt, response, instruction ids and kwargs alone."""
    return score_item(record, record["response"])


def score_rows(predictions: list[dict], items: dict[str, dict]) -> list[dict]:
    """Score JSONL rows of ``prompt``/``response`` (the original tool's response format).

    ``items`` maps prompt text to its IFEval item; a prediction row may instead carry its own
    ``instruction_id_list`` and ``kwargs``.
    """
    records = []
    for number, pred in enumerate(predictions, 1):
        if "prompt" not in pred or "response" not in pred:
            raise ValueError(f"predictions line {number}: needs 'prompt' and 'response'")
        if "instruction_id_list" in pred and "kwargs" in pred:
            item = pred
        elif pred["prompt"] in items:
            item = items[pred["prompt"]]
        else:
            raise ValueError(
                f"predictions line {number}: prompt not in the IFEval data given with --data "
                "and no 'instruction_id_list'/'kwargs' fields"
            )
        try:
            records.append(score_item(item, pred["response"]))
        except ValueError as error:
            raise ValueError(f"predictions line {number}: {error}") from None
    return records


def metrics(records: list[dict]) -> dict[str, float]:
    """Prompt-level (all instructions followed) and instruction-level accuracy, strict/loose."""
    if not records:
        raise ValueError("no predictions to score")
    out = {}
    for mode in ("strict", "loose"):
        prompts = [float(r[f"follow_all_instructions_{mode}"]) for r in records]
        flags = [float(f) for r in records for f in r[f"follow_instruction_list_{mode}"]]
        out[f"prompt_level_{mode}_acc"] = sum(prompts) / len(prompts)
        out[f"inst_level_{mode}_acc"] = sum(flags) / len(flags)
    return out


def strict_fraction(instruction_ids: list[str], kwargs: list[dict], response: str) -> float:
    """Share of instructions the response follows, strictly (the RLVR reward)."""
    if not instruction_ids:
        raise ValueError("no instructions to check")
    item = {"prompt": "", "instruction_id_list": instruction_ids, "kwargs": kwargs}
    flags = score_item(item, response)["follow_instruction_list_strict"]
    return sum(flags) / len(flags)
