"""IFEval as a task family: recompute from saved rows, score the original tool's responses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evals.families import Family, RunOptions, field_texts
from evals.ifeval.scoring import metrics, rescore, score_rows
from evals.rowschema import require
from evals.spec import TaskSpec


def recompute_metrics(rows: list[dict], spec: dict[str, Any]) -> dict[str, float]:
    """Only prompt, response, instruction ids and kwargs are read: stored pass flags are redone."""
    return metrics([rescore(r) for r in rows])


def check_data(path: Path | None, rows: list[dict]) -> None:
    """Each IFEval data row needs its prompt, instruction ids and kwargs."""
    for number, row in enumerate(rows, 1):
        require(row, ("prompt", "instruction_id_list", "kwargs"), f"{path}:{number}",
                "IFEval row", "expected the input_data.jsonl format: key, prompt, "
                "instruction_id_list, kwargs")  # fmt: skip


def score_file(
    spec: TaskSpec, predictions: Path, data: Path | None, out_dir: Path | None
) -> dict[str, Any]:
    """Score the original tool's response format (JSONL ``prompt``, ``response``)."""
    from evals import results, sources

    data_rows = sources.read_jsonl(data) if data else []
    check_data(data, data_rows)
    rows = score_rows(sources.read_jsonl(predictions), {r["prompt"]: r for r in data_rows})
    return results.scored_result(
        spec, "ifeval", rows, predictions=predictions, data=data, data_rows=len(data_rows),
        out_dir=out_dir,
    )  # fmt: skip


# Tulu 3's IFEval generation: greedy, up to 2048 new tokens, stop at the end of the turn.
UNTIL = ("<|im_end|>",)
MAX_GEN_TOKS = 2048


def evaluate(
    spec: TaskSpec, model_dir: Path, data: Path, out_dir: Path, options: RunOptions
) -> dict[str, Any]:
    """Each prompt as the only user turn (a base variant: the prompt as plain text, then a blank
    line) -> greedy generation -> the four IFEval numbers."""
    from evals import generative

    plain = generative.is_plain(spec)
    return generative.evaluate_rows(
        spec, "ifeval", model_dir, data, out_dir, options,
        lambda row: (
            generative.plain_context(None, row["prompt"])
            if plain
            else [{"role": "user", "content": row["prompt"]}]
        ),
        lambda row, text: rescore({**row, "response": text}),
        metrics, until=UNTIL, default_max_gen_toks=MAX_GEN_TOKS, check=check_data,
        ids=lambda row: {"key": row.get("key")},
    )  # fmt: skip


texts = field_texts("prompt")


FAMILY = Family(
    kind="ifeval", metrics=recompute_metrics, evaluate=evaluate, score=score_file, texts=texts
)
