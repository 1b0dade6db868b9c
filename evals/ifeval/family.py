"""IFEval as a task family: recompute from saved rows, score the original tool's responses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evals.families import Family, RunOptions
from evals.ifeval.scoring import metrics, rescore, score_rows
from evals.spec import TaskSpec


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
    """Each prompt as the only user turn -> greedy generation -> the four IFEval numbers."""
    from evals import generative, sources
    from evals.spec import resolve

    data_rows = sources.read_jsonl(data)
    check_data(data, data_rows)
    resolved = resolve(spec, data, len(data_rows))
    indices = generative.sampled(spec, len(data_rows), options.limit)
    requests, texts, harness = generative.run(
        spec, Path(model_dir), out_dir, options,
        [[{"role": "user", "content": data_rows[i]["prompt"]}] for i in indices],
        until=UNTIL, default_max_gen_toks=MAX_GEN_TOKS,
        extra=lambda k: {"index": indices[k], "key": data_rows[indices[k]].get("key")},
    )  # fmt: skip
    rows = [
        {"doc_id": r["doc_id"], "index": r["index"], **rescore({**data_rows[r["index"]],
                                                               "response": text})}
        for r, text in zip(requests, texts, strict=True)
    ]  # fmt: skip
    return generative.write(
        spec, "ifeval", resolved, harness, model_dir, out_dir, options.limit, rows, metrics(rows)
    )


def texts(data: Path) -> list[str]:
    """The prompt of each row."""
    from evals import sources

    return [row["prompt"] for row in sources.read_jsonl(data)]


FAMILY = Family(
    kind="ifeval", metrics=recompute_metrics, evaluate=evaluate, score=score_file, texts=texts
)
