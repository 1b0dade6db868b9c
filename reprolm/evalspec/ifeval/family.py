"""IFEval as a task family: recompute from saved rows, score the original tool's responses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reprolm.evalspec.families import Family
from reprolm.evalspec.ifeval.scoring import metrics, rescore, score_rows
from reprolm.evalspec.spec import TaskSpec


def recompute_metrics(rows: list[dict], spec: dict[str, Any]) -> dict[str, float]:
    """Only prompt, response, instruction ids and kwargs are read: stored pass flags are redone."""
    return metrics([rescore(r) for r in rows])


def check_data(path: Path | None, rows: list[dict]) -> None:
    """Each IFEval data row needs its prompt, instruction ids and kwargs."""
    for number, row in enumerate(rows, 1):
        missing = [k for k in ("prompt", "instruction_id_list", "kwargs") if k not in row]
        if missing:
            raise ValueError(
                f"{path}:{number}: IFEval row lacks {', '.join(missing)} "
                "(expected the input_data.jsonl format: key, prompt, instruction_id_list, kwargs)"
            )


def score_file(
    spec: TaskSpec, predictions: Path, data: Path | None, out_dir: Path | None
) -> dict[str, Any]:
    """Score the original tool's response format (JSONL ``prompt``, ``response``)."""
    from reprolm.evalspec import results, sources

    data_rows = sources.read_jsonl(data) if data else []
    check_data(data, data_rows)
    rows = score_rows(sources.read_jsonl(predictions), {r["prompt"]: r for r in data_rows})
    return results.scored_result(
        spec, "ifeval", rows, predictions=predictions, data=data, data_rows=len(data_rows),
        out_dir=out_dir,
    )  # fmt: skip


FAMILY = Family(kind="ifeval", metrics=recompute_metrics, score=score_file)
