"""Score a ``responses`` artifact on its spec, against the spec's dataset in ``evaldata``.

The same scorer as ``reprolm eval score`` (the spec family's ``score``), run as a job, so the
result is an artifact: its manifest's inputs are the responses artifact (whose config holds the
user's ``produced_by``) and the evaldata artifact (the dataset's blake3), and the result carries
the spec hash. Payload: ``specs/<safe id>/`` (result.json + predictions.jsonl, recomputable with
``reprolm eval recompute``) and ``external.json``, which the comparison table reads to show the
column as external.
"""

from __future__ import annotations

import json
from pathlib import Path

from evals.families import family_of
from evals.registry import get_spec
from evals.results import update_result
from stages.common.job import Input, JobContext
from stages.common.jsonl import write_json
from stages.evaldata.stage import data_file
from stages.evaluate.specs import SPECS_DIR, safe_id
from stages.responses.stage import RECORD, predictions_path

EXTERNAL = "external.json"


class ScoreError(ValueError):
    """The inputs or config cannot be scored (the message names the key or input)."""


def run(config: dict, inputs: dict[str, Input], output_dir: Path, context: JobContext) -> dict:
    """Score the responses; write ``specs/<id>/`` and ``external.json``; return the metrics."""
    del context
    missing = [name for name in ("responses", "evaldata") if name not in inputs]
    if missing:
        raise ScoreError(
            f"score: input(s) {missing} missing; pass --input responses=<responses artifact> "
            "--input evaldata=<evaldata artifact>"
        )
    try:
        spec = get_spec(config["task"])
    except KeyError as error:
        raise ScoreError(f"score: config key 'task': {error.args[0]}") from None
    scorer = family_of(spec).score
    if scorer is None:
        raise ScoreError(f"score: config key 'task': {spec.task_id} does not score files")
    record = json.loads((inputs["responses"].path / RECORD).read_text(encoding="utf-8"))
    if record["task"] != spec.task_id:
        raise ScoreError(
            f"score: config key 'task' is {spec.task_id} but the responses answer "
            f"{record['task']}; score them on their own spec"
        )
    data = data_file(inputs["evaldata"].path, config["dataset"])
    if not data.exists():
        raise ScoreError(
            f"score: the evaldata input has no dataset {config['dataset']!r} ({data}); the "
            "plan adds the external entries' specs to the evaldata job"
        )
    out = output_dir / SPECS_DIR / safe_id(spec.task_id)
    result = scorer(spec, predictions_path(inputs["responses"].path), data, out)
    responses = inputs["responses"].manifest
    external = {
        "produced_by": record["produced_by"],
        "responses": {"fingerprint": responses["fingerprint"], "digest": responses["digest"]},
    }
    result = update_result(out, external=external)
    summary = {
        **external,
        "task_id": result["task_id"],
        "spec_hash": result["spec_hash"],
        "primary_metric": result["primary_metric"],
        "primary": result["primary"],
        "result": (out / "result.json").relative_to(output_dir).as_posix(),
    }
    write_json(output_dir / EXTERNAL, summary)
    metrics = {f"{safe_id(spec.task_id)}/{k}": v for k, v in result["metrics"].items()}
    return {k: v for k, v in metrics.items() if isinstance(v, int | float)}
