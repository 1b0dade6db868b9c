"""curate stage: normalize, exact dedup and decontaminate the world's four training sets.

Decontamination is hand-written (see stages/curate/decontaminate.py for why not datatrove).
"""

from __future__ import annotations

import pathlib

from stages.common.job import Input, JobContext
from stages.common.jsonl import read_jsonl, write_json, write_jsonl
from stages.curate.decontaminate import decontaminate, words
from stages.curate.evalsets import SPEC_PREFIX, load_eval, load_spec_eval
from stages.curate.normalize import MESSAGE_KEYS, REQUIRED, dedup, normalize_row, text_fields

TRAIN_SETS = ("pretrain", "midtrain", "sft", "preference", "rlvr")


def _check_row(train_set: str, row: dict, where: str) -> None:
    """Field types the later steps rely on; errors name file:line."""
    if train_set == "pretrain" and not isinstance(row["text"], str):
        raise ValueError(f"{where}: 'text' must be a string")
    for key in MESSAGE_KEYS[train_set]:
        messages = row[key]
        if not isinstance(messages, list) or not all(
            isinstance(m, dict) and isinstance(m.get("content"), str) and "role" in m
            for m in messages
        ):
            raise ValueError(f"{where}: {key!r} must be a list of {{'role', 'content': str}}")


def _load_train(world: pathlib.Path, train_set: str, form: str) -> tuple[int, list[dict]]:
    """(rows read, rows that survive normalization) of one training set."""
    path = world / "train" / f"{train_set}.jsonl"
    rows = read_jsonl(path, REQUIRED[train_set])
    kept = []
    for i, row in enumerate(rows):
        _check_row(train_set, row, f"{path}:{i + 1}")
        normalized = normalize_row(train_set, row, form)
        if normalized is not None:
            kept.append(normalized)
    return len(rows), kept


def run(
    config: dict, inputs: dict[str, Input], output_dir: pathlib.Path, context: JobContext
) -> dict:
    """Write data/*.jsonl, decontamination.json and curation.json; return the counts."""
    if "world" not in inputs:
        raise KeyError("curate: needs input 'world' (a world artifact directory)")
    world = inputs["world"].path
    counts: dict[str, dict[str, int]] = {}
    data: dict[str, list[dict]] = {}
    for name in TRAIN_SETS:
        read, rows = _load_train(world, name, config["unicode_form"])
        counts[name] = {"documents_in": read, "after_normalize": len(rows)}
        data[name] = dedup(rows) if config["dedup"] else rows
        counts[name]["after_dedup"] = len(data[name])

    instances = load_eval(world)
    spec_meta: dict[str, dict] | None = None
    if "evaldata" in inputs:
        spec_instances, spec_meta = load_spec_eval(inputs["evaldata"].path)
        instances |= spec_instances
    docs = {
        name: [[words(text) for text in text_fields(name, row)] for row in rows]
        for name, rows in data.items()
    }
    n, threshold = config["ngram"], config["threshold"]
    report = decontaminate(docs, instances, n, threshold)
    if not config["decontaminate"]:  # still scored, so the report shows the contamination
        report.removed = {name: set() for name in data}

    removed_report = {}
    for name in TRAIN_SETS:
        drop = report.removed[name]
        removed_report[name] = {
            "documents": len(drop),
            "ids": [row["id"] for i, row in enumerate(data[name]) if i in drop],
        }
        data[name] = [row for i, row in enumerate(data[name]) if i not in drop]
        counts[name]["after_decontamination"] = len(data[name])
        write_jsonl(output_dir / "data" / f"{name}.jsonl", data[name])

    world_sets = {t: v for t, v in report.tasks.items() if not t.startswith(SPEC_PREFIX)}
    document = {"ngram": n, "threshold": threshold, "eval_sets": world_sets}
    document["removed"] = removed_report
    if spec_meta is not None:  # absent without specs: the payload stays as it was
        document["spec_sets"] = {
            name: {**meta, **report.tasks.get(SPEC_PREFIX + name, {})}
            for name, meta in spec_meta.items()
        }
    write_json(output_dir / "decontamination.json", document)
    write_json(output_dir / "curation.json", counts)
    metrics: dict[str, float] = {}
    for name in TRAIN_SETS:
        metrics |= {f"{name}_{key}": value for key, value in counts[name].items()}
    for task, stats in report.tasks.items():  # spec sets as "evaldata/<name>_flagged"
        metrics[f"{task}_flagged"] = stats["flagged"]
        metrics[f"{task}_contamination"] = stats["contamination"]
    return metrics
