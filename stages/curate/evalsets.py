"""The evaluation sets curate decontaminates against: the world's eval sets and the imported
spec datasets, as task -> [(instance id, texts)]."""

from __future__ import annotations

import json
import pathlib

from stages.common.jsonl import read_jsonl
from stages.curate.decontaminate import instance_texts


def load_eval(world: pathlib.Path) -> dict[str, list[tuple[str, list[str]]]]:
    """task -> [(instance id, texts of its decontamination fields)] from eval/index.json."""
    index_path = world / "eval" / "index.json"
    if not index_path.is_file():
        raise FileNotFoundError(
            f"{index_path}: missing; the 'world' input must be a world artifact"
        )
    index = json.loads(index_path.read_text(encoding="utf-8"))
    instances = {}
    for task in sorted(index):
        spec = index[task]
        if not spec.get("text_fields"):
            raise ValueError(f"{index_path}: task {task!r} has no 'text_fields'")
        path = world / spec["file"]
        rows = read_jsonl(path, ("id",))
        instances[task] = [
            (row["id"], instance_texts(row, spec["text_fields"], f"{path}:{i + 1}"))
            for i, row in enumerate(rows)
        ]
    return instances


SPEC_PREFIX = "evaldata/"  # report keys of spec datasets, apart from the world's eval sets


def load_spec_eval(evaldata: pathlib.Path) -> tuple[dict[str, list], dict[str, dict]]:
    """Instances of the imported spec datasets, keyed ``evaldata/<name>`` (instance id = row
    index), and per dataset what the report records about it. A dataset whose specs' family
    defines no ``texts`` hook is listed as not measured."""
    from evals.families import family_of
    from evals.registry import get_spec
    from stages.evaldata.stage import data_file, load_index

    index = load_index(evaldata)
    instances, meta = {}, {}
    for name, entry in sorted(index.items()):
        hooks = {family_of(get_spec(s)).texts for s in entry["specs"]} - {None}
        meta[name] = {"specs": entry["specs"], "blake3": entry["blake3"], "measured": bool(hooks)}
        if len(hooks) > 1:
            raise ValueError(f"evaldata dataset {name!r}: its specs disagree on instance texts")
        if hooks:
            texts = hooks.pop()(data_file(evaldata, name))
            instances[SPEC_PREFIX + name] = [(str(i), [t]) for i, t in enumerate(texts)]
    return instances, meta
