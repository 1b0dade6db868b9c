"""Apply reprolm tracking events to an MLflow store (imported only when tracking is used).

Every apply is idempotent: a job run is found again by its ``reprolm.event_id`` tag, and a run
left half-written by an outage (no ``reprolm.complete`` tag) is deleted and written again, so a
spool replayed twice, or an event both delivered and spooled, never duplicates a run.
"""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

from mlflow.entities import (
    Dataset,
    DatasetInput,
    InputTag,
    LoggedModelInput,
    LoggedModelOutput,
    Metric,
    Param,
    RunTag,
    ViewType,
)
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

PARENT_TAG = "mlflow.parentRunId"
COMPLETE_TAG = "reprolm.complete"
EXTERNAL_MODEL_TAG = "mlflow.model.isExternal"
DATASET_DIGEST_CHARS = 32  # MLflow stores at most 36 characters of a dataset digest
BATCH_PARAMS, BATCH_TAGS, BATCH_METRICS = 100, 100, 1000


def ensure_experiment(client: MlflowClient, name: str, artifact_location: str | None) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return client.create_experiment(name, artifact_location=artifact_location)
    except MlflowException:
        # Another job created it in between.
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def _terminate(client: MlflowClient, run_id: str, status: str, end_time: int) -> None:
    # set_terminated prints "View run ..." links to stdout, which would corrupt --json output.
    with contextlib.redirect_stdout(io.StringIO()):
        client.set_terminated(run_id, status=status, end_time=end_time)


def _quote(value: str) -> str:
    return "'" + value.replace("'", "") + "'"


def _runs_tagged(client: MlflowClient, experiment_id: str, **tags: str) -> list[Any]:
    where = " and ".join(f"tags.`{k.replace('__', '.')}` = {_quote(v)}" for k, v in tags.items())
    return list(client.search_runs([experiment_id], where, ViewType.ACTIVE_ONLY, max_results=50))


def _set_tags(client: MlflowClient, run_id: str, tags: dict[str, str]) -> None:
    items = [RunTag(k, v) for k, v in sorted(tags.items())]
    for i in range(0, len(items), BATCH_TAGS):
        client.log_batch(run_id, tags=items[i : i + BATCH_TAGS])


def _parent(client: MlflowClient, experiment_id: str, event: dict[str, Any]) -> str | None:
    """The invocation's parent run: the exported id if it exists, else found or created by tag."""
    run_id = event.get("parent_run_id")
    if run_id:
        try:
            run = client.get_run(run_id)
            if run.info.lifecycle_stage == "active":
                return run_id
        except MlflowException:
            pass
    invocation = event.get("invocation")
    if not invocation:
        return None
    found = _runs_tagged(
        client, experiment_id, reprolm__kind="workflow", reprolm__invocation=invocation
    )
    if found:
        return found[0].info.run_id
    # The workflow's own start event is still spooled: open a minimal parent that the start
    # event completes when it is replayed.
    tags = {"reprolm.kind": "workflow", "reprolm.invocation": invocation}
    tags["reprolm.event_id"] = invocation
    run = client.create_run(
        experiment_id, start_time=event.get("start_time"), tags=tags, run_name="workflow"
    )
    return run.info.run_id


def _apply_workflow(client: MlflowClient, experiment_id: str, event: dict[str, Any]) -> str:
    found = _runs_tagged(
        client, experiment_id, reprolm__kind="workflow", reprolm__invocation=event["invocation"]
    )
    if found:
        run_id = found[0].info.run_id
        client.set_tag(run_id, "mlflow.runName", event["run_name"])
    else:
        run_id = client.create_run(
            experiment_id, start_time=event["start_time"], run_name=event["run_name"]
        ).info.run_id
    _set_tags(client, run_id, event["tags"])
    return run_id


def _apply_workflow_end(client: MlflowClient, experiment_id: str, event: dict[str, Any]) -> str:
    run_id = _parent(client, experiment_id, {**event, "start_time": event["end_time"]})
    _terminate(client, run_id, event["status"], event["end_time"])
    return run_id


def find_model(client: MlflowClient, experiment_id: str, digest: str) -> Any | None:
    """The LoggedModel of a checkpoint digest (the oldest one when several exist)."""
    models = client.search_logged_models(
        [experiment_id],
        filter_string=f"tags.`reprolm.digest` = {_quote(digest)}",
        order_by=[{"field_name": "creation_timestamp", "ascending": True}],
        max_results=1,
    )
    return models[0] if models else None


def _dataset_input(record: dict[str, Any]) -> DatasetInput:
    profile = {k: record.get(k) for k in ("digest", "fingerprint", "stage")}
    dataset = Dataset(
        name=record["name"],
        digest=record["digest"][:DATASET_DIGEST_CHARS],
        source_type="local",
        source=json.dumps({"uri": record.get("source")}),
        profile=json.dumps(profile, sort_keys=True),
    )
    tags = [
        InputTag("mlflow.data.context", record["input_name"]),
        InputTag("reprolm.digest", record["digest"]),
        InputTag("reprolm.fingerprint", str(record.get("fingerprint"))),
    ]
    return DatasetInput(dataset=dataset, tags=tags)


def _live_run(client: MlflowClient, experiment_id: str, event: dict[str, Any]) -> str | None:
    """The RUNNING run a job opened for its live metrics (``reprolm.tracking.live``), if any."""
    live_id = event.get("live_id")
    if not live_id:
        return None
    runs = _runs_tagged(client, experiment_id, reprolm__live_id=live_id)
    return runs[0].info.run_id if runs else None


def _logged_points(client: MlflowClient, run_id: str) -> set[tuple[str, int]]:
    """``(key, step)`` of the training-curve points a live run already holds."""
    keys = [k for k in client.get_run(run_id).data.metrics if k.startswith("train/")]
    return {(key, m.step) for key in keys for m in client.get_metric_history(run_id, key)}


def _apply_job(
    client: MlflowClient, experiment_id: str, event: dict[str, Any]
) -> str:  # one request per step; ~10 requests per job
    for run in _runs_tagged(client, experiment_id, reprolm__event_id=event["event_id"]):
        if run.data.tags.get(COMPLETE_TAG) == "true":
            return run.info.run_id
        client.delete_run(run.info.run_id)  # half-written by an outage: write it again
    parent = _parent(client, experiment_id, event)
    tags = dict(event["tags"])
    if parent:
        tags[PARENT_TAG] = parent
    run_id = _live_run(client, experiment_id, event)
    delivered: set[tuple[str, int]] = set()
    if run_id is not None:  # the run the job opened while it trained: complete it
        _set_tags(client, run_id, {**tags, "mlflow.runName": event["run_name"]})
        delivered = _logged_points(client, run_id)
    else:
        run_id = client.create_run(
            experiment_id, start_time=event["start_time"], tags=tags, run_name=event["run_name"]
        ).info.run_id
    params = [Param(k, v) for k, v in sorted(event["params"].items())]
    for i in range(0, len(params), BATCH_PARAMS):
        client.log_batch(run_id, params=params[i : i + BATCH_PARAMS])

    own_model = None
    if event.get("model"):
        spec = event["model"]
        own_model = find_model(client, experiment_id, spec["digest"])
        if own_model is None:
            own_model = client.create_logged_model(
                experiment_id,
                name=spec["name"],
                source_run_id=run_id,
                tags={**spec["tags"], EXTERNAL_MODEL_TAG: "true"},
                params=event["params"],
                model_type=spec["model_type"],
            )
            client.finalize_logged_model(own_model.model_id, "READY")
        client.log_outputs(run_id, [LoggedModelOutput(own_model.model_id, step=0)])

    input_models = [find_model(client, experiment_id, d) for d in event["model_inputs"]]
    input_models = [m for m in input_models if m is not None]
    datasets = [_dataset_input(record) for record in event["datasets"]]
    if datasets or input_models:
        client.log_inputs(
            run_id,
            datasets=datasets or None,
            models=[LoggedModelInput(m.model_id) for m in input_models] or None,
        )

    # Summary metrics (step 0, logged first) belong to the checkpoint they describe: the job's
    # own model, or for an eval job the model it scored.
    metric_model = own_model.model_id if own_model else None
    if event.get("metric_model"):
        scored = find_model(client, experiment_id, event["metric_model"])
        metric_model = scored.model_id if scored else None
    summary_keys = {row[0] for row in event["metrics"] if not row[0].startswith("train/")}
    metrics = [
        Metric(
            key,
            value,
            timestamp,
            step,
            model_id=metric_model if key in summary_keys else None,
        )
        for key, value, step, timestamp in event["metrics"]
        if (key, step) not in delivered
    ]
    for i in range(0, len(metrics), BATCH_METRICS):
        client.log_batch(run_id, metrics=metrics[i : i + BATCH_METRICS])
    client.set_tag(run_id, COMPLETE_TAG, "true")
    _terminate(client, run_id, "FINISHED", event["end_time"])
    return run_id


def apply_event(client: MlflowClient, event: dict[str, Any], artifact_location: str | None) -> str:
    """Write one event into the store; returns the run id it landed in."""
    experiment_id = ensure_experiment(client, event["experiment"], artifact_location)
    kind = event["kind"]
    if kind == "job":
        return _apply_job(client, experiment_id, event)
    if kind == "workflow":
        return _apply_workflow(client, experiment_id, event)
    if kind == "workflow_end":
        return _apply_workflow_end(client, experiment_id, event)
    raise ValueError(f"unknown tracking event kind {kind!r}")


def find_run(client: MlflowClient, run_id: str, experiment: str) -> Any | None:
    """A run by MLflow id, or by ``event:<id>`` through its event tag; None when absent."""
    if run_id.startswith("event:"):
        experiment_obj = client.get_experiment_by_name(experiment)
        if experiment_obj is None:
            return None
        runs = _runs_tagged(
            client, experiment_obj.experiment_id, reprolm__event_id=run_id.split(":", 1)[1]
        )
        return runs[0] if runs else None
    try:
        run = client.get_run(run_id)
    except MlflowException:
        return None
    return run if run.info.lifecycle_stage == "active" else None


def latest_invocation(client: MlflowClient, experiment: str) -> dict[str, Any]:
    """The newest parent run and its children, as plain data."""
    experiment_obj = client.get_experiment_by_name(experiment)
    if experiment_obj is None:
        return {"parent": None, "runs": []}
    parents = client.search_runs(
        [experiment_obj.experiment_id],
        "tags.`reprolm.kind` = 'workflow'",
        ViewType.ACTIVE_ONLY,
        max_results=1,
        order_by=["attributes.start_time DESC"],
    )
    if not parents:
        return {"parent": None, "runs": []}
    parent = parents[0]
    children = client.search_runs(
        [experiment_obj.experiment_id],
        f"tags.`{PARENT_TAG}` = {_quote(parent.info.run_id)}",
        ViewType.ACTIVE_ONLY,
        max_results=5000,
        order_by=["attributes.start_time ASC"],
    )

    def row(run: Any) -> dict[str, Any]:
        tags = run.data.tags
        return {
            "run_id": run.info.run_id,
            "name": run.info.run_name,
            "status": run.info.status,
            "stage": tags.get("reprolm.stage"),
            "label": tags.get("reprolm.label"),
            "fingerprint": tags.get("reprolm.fingerprint"),
            "digest": tags.get("reprolm.digest"),
        }

    return {
        "parent": {
            "run_id": parent.info.run_id,
            "name": parent.info.run_name,
            "status": parent.info.status,
            "invocation": parent.data.tags.get("reprolm.invocation"),
            "recipe": parent.data.tags.get("reprolm.recipe"),
        },
        "runs": [row(run) for run in children],
    }
