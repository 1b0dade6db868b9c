"""Comparison entries from what evaluations leave on disk.

* an **evaluate artifact**: every result under ``specs/*/result.json``, the world's eval sets
  (kind ``world``) listed under their short names (``arith_gen``) with standard errors from their
  predictions, and ``results.json`` (decontamination of world tasks from an optional
  ``decontamination: {task: ...}``; world tasks of older artifacts, which have no result
  directories, from its ``tasks``, with standard errors from ``samples/<task>.jsonl``);
* a **spec result** directory (``reprolm eval run|score --out``): its ``result.json``;
* a **release artifact**: the entries stored in ``comparison/comparison.json``.

Column labels come from the inputs themselves: an evaluate artifact's ``checkpoint``, a spec
result's model name and digest, a release's name as prefix of its checkpoints
(``reprolm-tiny/sft``).
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any

from evals.compare import SCHEMA, Entry, decontamination, entries_of
from evals.results import PREDICTIONS, RESULT, load_result
from evals.sources import read_jsonl

RESULTS = "results.json"  # the evaluate stage's world results
SPEC_RESULTS = "specs/*/" + RESULT
RELEASE_TABLE = "comparison/comparison.json"
SPEC_TYPE = "spec"  # results.json task_types value of a task whose result is under specs/
MANIFEST = "provenance.json"
EXTERNAL = "external.json"  # a score artifact: responses produced outside the recipe


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from None


def world_primary(doc: dict[str, Any], task: str) -> str:
    """A world task's headline metric: as recorded, else acc, else exact_match, else first."""
    recorded = (doc.get("primary_metrics") or {}).get(task)
    if recorded:
        return recorded
    metrics = doc["tasks"][task]
    return next((m for m in ("acc", "exact_match") if m in metrics), sorted(metrics)[0])


def mean_stderr(values: list[float]) -> float | None:
    """Standard error of a mean (sample stdev / sqrt(n)), as lm-eval reports for ``mean``."""
    return statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else None


def _sample_stderr(eval_dir: Path | None, task: str, metric: str) -> float | None:
    path = eval_dir / "samples" / f"{task}.jsonl" if eval_dir else None
    if path is None or not path.is_file():
        return None
    lines = path.read_text(encoding="utf-8").splitlines()
    scores = [json.loads(line).get("scores", {}).get(metric) for line in lines if line]
    if any(not isinstance(s, (int, float)) or isinstance(s, bool) for s in scores):
        return None  # not a per-instance numeric score: no standard error rather than a wrong one
    return mean_stderr([float(s) for s in scores])


def world_entries(
    doc: dict[str, Any], column: str, eval_dir: Path | None = None, skip: set[str] = frozenset()
) -> list[Entry]:
    """Entries of an evaluate ``results.json`` document (one per task, its primary metric).

    Tasks in ``skip`` and tasks typed ``spec`` (``task_types``) are left out: their numbers come
    from their spec result, which carries the spec hash.
    """
    where = eval_dir / RESULTS if eval_dir else RESULTS
    for key in ("checkpoint", "tasks"):
        if key not in doc:
            raise ValueError(f"{where}: lacks the {key!r} field (not an evaluate results file)")
    decon = doc.get("decontamination") or {}
    types = doc.get("task_types") or {}
    entries = []
    for task in sorted(doc["tasks"]):
        if task in skip or types.get(task) == SPEC_TYPE:
            continue
        metric = world_primary(doc, task)
        if metric not in doc["tasks"][task]:
            raise ValueError(f"{where}: task {task!r} has no value for its metric {metric!r}")
        entries.append(
            Entry(
                column=column,
                task=task,
                metric=metric,
                value=float(doc["tasks"][task][metric]),
                stderr=_sample_stderr(eval_dir, task, metric),
                n=(doc.get("instances") or {}).get(task),
                spec_hash=None,
                decontamination=decontamination(decon.get(task), f"{where} task {task}"),
            )
        )
    return entries


def spec_entry(result: dict[str, Any], column: str, where: str = RESULT) -> Entry:
    """The entry of one spec result (``evals.results`` schema).

    Standard error: ``primary_stderr``, else ``metrics["<primary>_stderr"]``, else none.
    Decontamination: the result's ``decontamination`` (a share or a record).
    """
    primary = result["primary_metric"]
    stderr = result.get("primary_stderr", result["metrics"].get(f"{primary}_stderr"))
    return Entry(
        column=column,
        task=result["task_id"],
        metric=primary,
        value=float(result["primary"]),
        stderr=None if stderr is None else float(stderr),
        n=result.get("instances"),
        spec_hash=result["spec_hash"],
        decontamination=decontamination(result.get("decontamination"), where),
        variant=result.get("variant"),
    )


def world_result_entry(result: dict[str, Any], column: str, path: Path, decon: Any = None) -> Entry:
    """The entry of a world task's result: under its short name, without a spec hash (the world's
    tasks are compared across checkpoints under the evaluate job's ``chat_template`` policy,
    which formats post-trained checkpoints' prompts differently on purpose; the result keeps the
    full hash), standard error from the per-instance scores of its predictions."""
    from evals.world import instance_scores

    task, primary = result["spec"]["task_id"].split(":")[0], result["primary_metric"]
    rows = read_jsonl(path.parent / PREDICTIONS)
    return Entry(
        column=column,
        task=task,
        metric=primary,
        value=float(result["primary"]),
        stderr=mean_stderr(instance_scores(rows, result["spec"])[primary]),
        n=result.get("instances"),
        spec_hash=None,
        decontamination=decontamination(decon, f"{path} task {task}"),
    )


def evaluate_entries(eval_dir: Path, column: str) -> list[Entry]:
    """Entries of an evaluate artifact: every result in it (world tasks by short name)."""
    from evals.world import KIND

    eval_dir = Path(eval_dir)
    found = [(path, load_result(path)) for path in sorted(eval_dir.glob(SPEC_RESULTS))]
    world = [(path, result) for path, result in found if result["kind"] == KIND]
    specs = [(path, result) for path, result in found if result["kind"] != KIND]
    ids = {result["task_id"] for _, result in specs}
    names = {result["task_id"].split(":")[0] for _, result in world}
    entries, decon = [], {}
    if (eval_dir / RESULTS).is_file():
        doc = _read_json(eval_dir / RESULTS)
        decon = doc.get("decontamination") or {}
        typed = {t for t, kind in (doc.get("task_types") or {}).items() if kind == SPEC_TYPE}
        if typed - ids:
            raise ValueError(
                f"{eval_dir / RESULTS}: spec tasks {sorted(typed - ids)} have no "
                f"{SPEC_RESULTS} in {eval_dir}; the evaluate artifact is incomplete"
            )
        entries += world_entries(doc, column, eval_dir, skip=ids | names)
    elif not found:
        raise FileNotFoundError(
            f"{eval_dir}: neither {RESULTS} nor {SPEC_RESULTS}: not an evaluate artifact"
        )
    for path, result in world:
        name = result["task_id"].split(":")[0]
        entries.append(world_result_entry(result, column, path, decon.get(name)))
    entries += [spec_entry(result, column, str(path)) for path, result in specs]
    return entries


def _manifest(path: Path) -> dict[str, Any]:
    return _read_json(path / MANIFEST) if (path / MANIFEST).is_file() else {}


def _checkpoint(eval_dir: Path) -> str:
    if (eval_dir / RESULTS).is_file():
        return _read_json(eval_dir / RESULTS)["checkpoint"]
    manifest = _manifest(eval_dir)
    return (manifest.get("config") or {}).get("checkpoint") or manifest.get("label", eval_dir.name)


def _input(path: Path, label: str | None) -> tuple[str, list[Entry]]:
    """``(kind, entries)`` of one CLI input; ``label`` overrides the default column/prefix."""
    if path.is_file() or (path / RESULT).is_file():
        result = load_result(path)
        model = result.get("model") or {}
        ident = model.get("digest") or model.get("predictions") or result["spec_hash"]
        default = f"{model.get('name', 'model')}@{ident[:8]}"
        return "result", [spec_entry(result, label or default, str(path))]
    if (path / RELEASE_TABLE).is_file():
        table = _read_json(path / RELEASE_TABLE)
        if table.get("schema") != SCHEMA:
            raise ValueError(f"{path / RELEASE_TABLE}: 'schema' is not {SCHEMA!r}")
        prefix = label or table.get("release") or path.name
        entries = entries_of(table)
        return "release", [
            Entry.from_dict({**e.__dict__, "column": f"{prefix}/{e.column}"}) for e in entries
        ]
    if (path / EXTERNAL).is_file():  # a score artifact: its column is its label (entry name)
        return "external", evaluate_entries(path, label or _manifest(path).get("label", path.name))
    if (path / RESULTS).is_file() or any(path.glob(SPEC_RESULTS)):
        return "evaluate", evaluate_entries(path, label or _checkpoint(path))
    raise ValueError(
        f"{path}: not a spec result ({RESULT}), an evaluate artifact ({RESULTS} or "
        f"{SPEC_RESULTS}) or a release artifact ({RELEASE_TABLE})"
    )


def load_inputs(paths: list[Path], labels: list[str] | None = None) -> list[Entry]:
    """Entries of every input, columns labelled from provenance (or ``labels``, in order).

    Spec results of one model share a column; a column that two evaluate or release inputs
    both claim is an error (label them with ``--label``).
    """
    return load_marked(paths, labels)[0]


def load_marked(
    paths: list[Path], labels: list[str] | None = None
) -> tuple[list[Entry], list[str]]:
    """``(entries, external columns)`` of the inputs (:func:`load_inputs`); a score artifact's
    column (responses produced outside the recipe) is external."""
    if labels and len(labels) != len(paths):
        raise ValueError(f"--label given {len(labels)} times for {len(paths)} inputs: one each")
    owner: dict[str, tuple[str, Path]] = {}  # column -> (kind, first input giving it)
    entries: list[Entry] = []
    external: list[str] = []
    for i, path in enumerate(paths):
        kind, found = _input(Path(path), labels[i] if labels else None)
        if kind == "external":
            external += [e.column for e in found if e.column not in external]
        for column in dict.fromkeys(e.column for e in found):
            first = owner.setdefault(column, (kind, path))
            if first[1] != path and (kind, first[0]) != ("result", "result"):
                raise ValueError(
                    f"{path} and {first[1]} both give column {column!r}: name them apart "
                    "with --label, once per input in order"
                )
        entries += found
    return entries, external
