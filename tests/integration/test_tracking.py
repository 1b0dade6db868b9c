"""MLflow lineage against a real ``mlflow server`` on 127.0.0.1 and the embedded SQLite store.

Manifests are built with ``reprolm.manifest.build_manifest`` over small real payloads (a chain
world -> curate -> tokenize -> pretrain -> sft -> evaluate), or read from the micro workspace.
Every test plants secrets in the environment and checks they reach no run, model or spool file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from reprolm import tracking
from reprolm.fingerprint import fingerprint
from reprolm.manifest import build_manifest, read_manifest
from tests.integration.mlflow_server import MlflowServer, free_port

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {
    "HF_TOKEN": "hf_planted0secret0value0xyz",
    "AWS_SECRET_ACCESS_KEY": "aws/planted+Secret42",
}
# Tags that name one invocation (or one store), not what was logged.
VOLATILE_TAGS = {"mlflow.parentRunId", "reprolm.event_id", "reprolm.invocation", "mlflow.runName"}
CHAIN = (
    # stage, label, inputs (name -> upstream label), config, log history length
    ("world", "world", {}, {"docs": 10, "mix": {"facts": 0.5}}, 0),
    ("curate", "curate", {"world": "world"}, {"ngram": 8}, 0),
    ("tokenize", "tokenize", {"curate": "curate"}, {"vocab_size": 300}, 0),
    ("pretrain", "pretrain", {"tokenize": "tokenize"}, {"lr": 0.001, "model": {"layers": 2}}, 40),
    ("sft", "sft", {"model": "pretrain", "data": "curate"}, {"lr": 0.0005, "epochs": 1}, 12),
    ("evaluate", "eval_sft", {"model": "sft", "world": "world"}, {"tasks": ["arith", "qa"]}, 0),
)


@pytest.fixture
def env(monkeypatch, tmp_path):
    """A clean tracking environment in a fresh working directory, with secrets planted."""
    for name in list(os.environ):
        if name.startswith(("REPROLM_MLFLOW", "MLFLOW_")):
            monkeypatch.delenv(name)
    # Registered with monkeypatch so that what start_workflow exports is undone afterwards.
    for name in (tracking.ENV_INVOCATION, tracking.ENV_PARENT):
        monkeypatch.setenv(name, "")
    for name, value in {**tracking.MLFLOW_ENV_DEFAULTS, **SECRETS}.items():
        monkeypatch.setenv(name, value)
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    return monkeypatch


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = MlflowServer(tmp_path_factory.mktemp("mlflow-server"))
    try:
        yield srv.start()
    finally:
        srv.stop()


def make_chain(root: Path) -> list[tuple[dict[str, Any], list[dict] | None]]:
    """Manifests (and training curves) of a small lineage, over real payload directories."""
    jobs: dict[str, dict[str, Any]] = {}
    chain = []
    for index, (stage, label, inputs, config, steps) in enumerate(CHAIN):
        config = {**config, "seed": 1, "threads": 1}
        records = {
            name: {
                "path": f"artifacts/{jobs[up]['stage']}/{up}-{jobs[up]['fingerprint']}",
                "stage": jobs[up]["stage"],
                "fingerprint": jobs[up]["fingerprint"],
                "digest": jobs[up]["digest"],
            }
            for name, up in inputs.items()
        }
        fp = fingerprint(stage, config, {n: r["fingerprint"] for n, r in records.items()})
        payload = root / "artifacts" / stage / f"{label}-{fp}"
        payload.mkdir(parents=True)
        (payload / "data.txt").write_text(f"{stage} payload {index}\n")
        history = [
            {
                "step": s,
                "loss": round(4.0 - 0.05 * s, 4),
                "learning_rate": 0.001,
                "epoch": s / steps,
            }
            for s in range(1, steps + 1)
        ] or None
        metrics = {"last_loss": history[-1]["loss"]} if history else {"documents": 10 + index}
        if stage == "evaluate":
            metrics = {"arith/exact_match": 0.25, "qa/acc,none": 0.5}
        manifest = build_manifest(
            stage=stage, label=label, fingerprint=fp, config=config, inputs=records,
            payload_dir=payload,
            code={"commit": "0" * 40, "dirty": False, "code_digest": f"c{index}",
                  "source_files": ["stages/x.py"]},
            environment={"python": "3.11", "packages": {"torch": "2.13.0"}, "threads": 1,
                         "env": {"OMP_NUM_THREADS": "1", "HF_TOKEN": SECRETS["HF_TOKEN"]},
                         "secret_field": SECRETS["AWS_SECRET_ACCESS_KEY"]},
            execution={"rule": stage, "started": f"2026-11-28T10:0{index}:00+00:00",
                       "ended": f"2026-11-28T10:0{index}:30+00:00",
                       "argv": ["--token", SECRETS["HF_TOKEN"]]},
            reproducibility={"level": "bitwise"},
            metrics=metrics,
        )  # fmt: skip
        # A secret that slipped into a config value must still not reach MLflow.
        manifest["config"] = {**config, "note": f"token={SECRETS['HF_TOKEN']}"}
        jobs[label] = manifest
        chain.append((manifest, history))
    return chain


def log_workflow(chain, recipe: str = "micro") -> tuple[str | None, list[str | None]]:
    parent = tracking.start_workflow(recipe=recipe, jobs=len(chain))
    run_ids = [tracking.log_job(manifest, history) for manifest, history in chain]
    tracking.end_workflow(success=True)
    return parent, run_ids


def client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def snapshot(mlflow_client, parent_id: str) -> dict[str, Any]:
    """What an invocation holds, without ids, invocation names or timestamps."""
    experiment_id = mlflow_client.get_run(parent_id).info.experiment_id
    runs = mlflow_client.search_runs(
        [experiment_id], f"tags.`mlflow.parentRunId` = '{parent_id}'", max_results=1000
    )
    models = {}

    def model_digest(model_id: str) -> str:
        if model_id not in models:
            models[model_id] = mlflow_client.get_logged_model(model_id).tags["reprolm.digest"]
        return models[model_id]

    result = {}
    for run in runs:
        full = mlflow_client.get_run(run.info.run_id)
        histories = {
            key: [
                (m.step, m.value) for m in mlflow_client.get_metric_history(full.info.run_id, key)
            ]
            for key in full.data.metrics
        }
        result[full.data.tags["reprolm.artifact"]] = {
            "name": full.info.run_name,
            "status": full.info.status,
            "tags": {k: v for k, v in full.data.tags.items() if k not in VOLATILE_TAGS},
            "params": full.data.params,
            "metrics": histories,
            "datasets": sorted(
                (d.dataset.name, d.dataset.digest, tuple(sorted((t.key, t.value) for t in d.tags)))
                for d in full.inputs.dataset_inputs
            ),
            "model_inputs": sorted(model_digest(m.model_id) for m in full.inputs.model_inputs),
            "model_outputs": sorted(model_digest(m.model_id) for m in full.outputs.model_outputs)
            if full.outputs
            else [],
        }
    parent = mlflow_client.get_run(parent_id)
    result["<parent>"] = {
        "status": parent.info.status,
        "tags": {k: v for k, v in parent.data.tags.items() if k not in VOLATILE_TAGS},
    }
    return result


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for name, value in SECRETS.items():
            assert value not in text, f"{name} leaked"


def store_text(mlflow_client, parent_id: str) -> str:
    """Everything the invocation's runs and models hold, as one text."""
    snap = snapshot(mlflow_client, parent_id)
    experiment_id = mlflow_client.get_run(parent_id).info.experiment_id
    models = mlflow_client.search_logged_models([experiment_id])
    return json.dumps(snap, default=str) + json.dumps(
        [(m.name, m.tags, m.params, [(x.key, x.value) for x in m.metrics]) for m in models]
    )


# --------------------------------------------------------------------------- fast checks


def test_disabled_outside_a_workflow(env, tmp_path):
    chain = make_chain(tmp_path)
    assert tracking.log_job(*chain[0]) is None
    assert not Path("mlruns.db").exists() and not tracking.spooled()
    env.setenv("REPROLM_MLFLOW_INVOCATION", "x")
    env.setenv("REPROLM_MLFLOW", "off")
    assert tracking.log_job(*chain[0]) is None and not tracking.spooled()


def test_event_is_allow_listed_and_scrubbed(env, tmp_path):
    env.setenv("REPROLM_MLFLOW_INVOCATION", "inv")
    manifest, history = make_chain(tmp_path)[3]  # pretrain
    event = tracking.build_job_event(manifest, history)
    assert_no_secret(json.dumps(event))
    assert "env.var.OMP_NUM_THREADS" in event["tags"]
    assert not any("HF_TOKEN" in key or "secret_field" in key for key in event["tags"])
    assert event["params"]["model.layers"] == "2" and event["params"]["lr"] == "0.001"
    assert event["event_id"] == tracking.event_id(
        "inv", manifest["fingerprint"], manifest["digest"]
    )
    curve = [row for row in event["metrics"] if row[0] == "train/loss"]
    assert [row[2] for row in curve] == list(range(1, 41))
    assert event["model"]["digest"] == manifest["digest"]


def test_unreachable_server_spools_fast_and_never_raises(env, tmp_path):
    env.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    chain = make_chain(tmp_path)
    started = time.perf_counter()
    assert tracking.start_workflow(recipe="micro") is None
    run_ids = [tracking.log_job(manifest, history) for manifest, history in chain]
    assert time.perf_counter() - started < 10
    assert all(r and r.startswith("event:") for r in run_ids)
    files = tracking.spooled()
    assert len(files) == len(chain) + 1  # the parent's start event and one per job
    assert_no_secret(*(path.read_text() for path in files))
    # A manifest so broken that no event can be built is still not the job's problem.
    assert tracking.log_job({"stage": "world"}, None) is None
    status = tracking.run_status(run_ids[0])
    assert status["exists"] is False and status["spooled"] and status["reachable"] is False


# --------------------------------------------------------------------------- real server


@pytest.mark.slow
def test_parent_and_child_runs(env, server, tmp_path):
    env.setenv("MLFLOW_TRACKING_URI", server.uri)
    chain = make_chain(tmp_path)
    parent_id, run_ids = log_workflow(chain)
    mlflow_client = client(server.uri)
    parent = mlflow_client.get_run(parent_id)
    assert parent.data.tags["reprolm.kind"] == "workflow" and parent.info.status == "FINISHED"
    assert parent_id == os.environ["REPROLM_MLFLOW_PARENT_RUN"]
    for (manifest, history), run_id in zip(chain, run_ids, strict=True):
        run = mlflow_client.get_run(run_id)
        tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
        assert tags["mlflow.parentRunId"] == parent_id
        assert tags["reprolm.fingerprint"] == manifest["fingerprint"]
        assert tags["reprolm.digest"] == manifest["digest"]
        assert tags["reprolm.rule"] == tags["reprolm.stage"] == manifest["stage"]
        assert tags["reprolm.label"] == manifest["label"]
        assert tags["mlflow.source.git.commit"] == "0" * 40
        assert tags["reprolm.reproducibility"] == "bitwise"
        assert params == tracking.flatten(tracking.scrub(manifest["config"]))
        for key, value in manifest["metrics"].items():
            assert metrics[tracking._key(key)] == value
        if history:
            curve = mlflow_client.get_metric_history(run_id, "train/loss")
            assert [(m.step, m.value) for m in curve] == [(h["step"], h["loss"]) for h in history]
        inputs = {d.dataset.digest: d for d in run.inputs.dataset_inputs}
        for name, record in manifest["inputs"].items():
            dataset_input = inputs[record["digest"][:32]]
            assert dataset_input.dataset.source == json.dumps({"uri": record["path"]})
            assert {t.key: t.value for t in dataset_input.tags} == {
                "mlflow.data.context": name,
                "reprolm.digest": record["digest"],
                "reprolm.fingerprint": record["fingerprint"],
            }
        status = tracking.run_status(run_id)
        assert status["exists"] and status["digest"] == manifest["digest"]
        assert status["fingerprint"] == manifest["fingerprint"]
    models = mlflow_client.search_logged_models([parent.info.experiment_id])
    checkpoints = {m.tags["reprolm.digest"]: m for m in models}
    for (manifest, _), run_id in zip(chain, run_ids, strict=True):
        if manifest["stage"] in tracking.CHECKPOINT_STAGES:
            model = checkpoints[manifest["digest"]]
            assert model.source_run_id == run_id and str(model.status) == "READY"
            assert model.tags["mlflow.model.isExternal"] == "true"
            assert mlflow_client.list_artifacts(run_id) == []  # no weights uploaded
    assert_no_secret(store_text(mlflow_client, parent_id))
    assert_no_secret(
        *(p.read_bytes().decode("latin-1") for p in server.root.rglob("*") if p.is_file())
    )


@pytest.mark.slow
def test_eval_score_leads_to_model_run_params_and_inputs(env, server, tmp_path):
    """From an eval score, the MLflow API alone leads to the model, its run, params, inputs."""
    env.setenv("MLFLOW_TRACKING_URI", server.uri)
    chain = make_chain(tmp_path)
    log_workflow(chain)
    by_label = {manifest["label"]: manifest for manifest, _ in chain}
    sft = by_label["sft"]
    mlflow_client = client(server.uri)
    experiment = mlflow_client.get_experiment_by_name("reprolm")
    # Start from the score alone: any eval run holding it.
    found = mlflow_client.search_runs(
        [experiment.experiment_id], "metrics.`arith/exact_match` = 0.25", max_results=1
    )
    eval_run = mlflow_client.get_run(found[0].info.run_id)  # search results omit inputs
    model = mlflow_client.get_logged_model(eval_run.inputs.model_inputs[0].model_id)
    assert model.tags["reprolm.digest"] == sft["digest"]
    assert any(
        m.key == "arith/exact_match" and m.run_id == eval_run.info.run_id for m in model.metrics
    )
    producer = mlflow_client.get_run(model.source_run_id)
    assert producer.data.tags["reprolm.fingerprint"] == sft["fingerprint"]
    assert producer.data.params["lr"] == "0.0005"
    input_digests = {
        {t.key: t.value for t in d.tags}["mlflow.data.context"]: {t.key: t.value for t in d.tags}[
            "reprolm.digest"
        ]
        for d in producer.inputs.dataset_inputs
    }
    assert input_digests == {name: rec["digest"] for name, rec in sft["inputs"].items()}


@pytest.mark.slow
def test_outage_spools_then_sync_replays_the_same_runs(env, server, tmp_path):
    env.setenv("MLFLOW_TRACKING_URI", server.uri)
    chain = make_chain(tmp_path / "a")
    reference_parent, _ = log_workflow(chain)
    reference = snapshot(client(server.uri), reference_parent)
    assert len(reference) == len(chain) + 1
    evaluation = next(v for k, v in reference.items() if k.startswith("artifacts/evaluate/"))
    assert evaluation["model_inputs"] == [chain[4][0]["digest"]]  # the sft checkpoint
    for name in (tracking.ENV_INVOCATION, tracking.ENV_PARENT):
        os.environ[name] = ""  # a second invocation

    parent_id = tracking.start_workflow(recipe="micro", jobs=len(chain))
    assert parent_id
    server.stop()  # mid-workflow
    for manifest, history in chain:
        started = time.perf_counter()
        run_id = tracking.log_job(manifest, history)
        assert run_id.startswith("event:") and time.perf_counter() - started < 5
    tracking.end_workflow(success=True)
    spool = tracking.spooled()
    assert len(spool) == len(chain) + 1
    assert_no_secret(*(path.read_text() for path in spool))
    kept = tmp_path / "kept"
    shutil.copytree(tracking.spool_dir(), kept)

    server.start()
    done = subprocess.run(
        [sys.executable, "-m", "reprolm.cli", "mlflow", "sync", "--json"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["replayed"]) == len(chain) + 1
    assert not tracking.spooled()
    mlflow_client = client(server.uri)
    assert snapshot(mlflow_client, parent_id) == reference
    invocation = os.environ[tracking.ENV_INVOCATION]
    for manifest, _ in chain:
        client_id = tracking.event_id(invocation, manifest["fingerprint"], manifest["digest"])
        status = tracking.run_status(tracking.CLIENT_ID_PREFIX + client_id)
        assert status["exists"] and status["digest"] == manifest["digest"]

    # Replaying the same spool again adds nothing.
    result = tracking.sync(spool_path=kept)
    assert not result["failed"] and result["remaining"] == 0
    assert snapshot(mlflow_client, parent_id) == reference
    assert_no_secret(store_text(mlflow_client, parent_id))


def test_mode_defaults_to_deferred_for_the_embedded_store(env):
    assert tracking.mode() == "deferred"  # SQLite under the working directory
    env.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking.mode() == "direct"
    env.setenv(tracking.ENV_MODE, "deferred")
    assert tracking.mode() == "deferred"


@pytest.mark.slow
def test_deferred_mode_lands_every_run_at_workflow_end(env, tmp_path):
    chain = make_chain(tmp_path)
    parent_id, run_ids = log_workflow(chain)
    assert parent_id
    assert all(r and r.startswith(tracking.CLIENT_ID_PREFIX) for r in run_ids)
    assert not tracking.spooled(), "the end hook replayed the spool"
    for run_id, (manifest, _) in zip(run_ids, chain, strict=True):
        status = tracking.run_status(run_id)
        assert status["exists"] and status["digest"] == manifest["digest"]


@pytest.mark.slow
def test_embedded_sqlite_default(env, tmp_path):
    env.setenv(tracking.ENV_MODE, "direct")
    chain = make_chain(tmp_path)
    parent_id, run_ids = log_workflow(chain)
    workdir = Path.cwd()
    assert parent_id and all(r and not r.startswith("event:") for r in run_ids)
    assert (workdir / "mlruns.db").is_file() and not tracking.spooled()
    mlflow_client = client(f"sqlite:///{workdir / 'mlruns.db'}")
    experiment = mlflow_client.get_experiment_by_name("reprolm")
    assert experiment.artifact_location == (workdir / "mlartifacts").as_uri()
    done = subprocess.run(
        [sys.executable, "-m", "reprolm.cli", "mlflow", "runs", "--json"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    assert listing["parent"]["run_id"] == parent_id
    assert [(r["fingerprint"], r["digest"]) for r in listing["runs"]] == [
        (m["fingerprint"], m["digest"]) for m, _ in chain
    ]
    assert_no_secret((workdir / "mlruns.db").read_bytes().decode("latin-1"))


# --------------------------------------------------------------------------- real workflow


def _wired() -> bool:
    runner = (ROOT / "reprolm" / "runner.py").read_text()
    return "log_job" in runner and "tracking.smk" in (ROOT / "Snakefile").read_text()


@pytest.mark.slow
@pytest.mark.skipif(not _wired(), reason="log_job/tracking.smk not wired into the workflow yet")
def test_micro_workflow_logs_every_job(micro_workspace):
    """The micro run (embedded store): one child run per job, each manifest's run agrees."""
    from reprolm.plan import load_plan

    plan = load_plan(micro_workspace / "config" / "micro.yaml")
    cwd = os.getcwd()
    os.chdir(micro_workspace)
    try:
        for job in plan.jobs.values():
            manifest = read_manifest(Path(job.artifact_dir))
            status = tracking.run_status(manifest["mlflow_run_id"])
            assert status["exists"], (job.key, status)
            assert (status["fingerprint"], status["digest"]) == (
                manifest["fingerprint"],
                manifest["digest"],
            )
        latest = tracking.latest_runs()
    finally:
        os.chdir(cwd)
    assert len(latest["runs"]) == len(plan.jobs)
    assert latest["parent"]["status"] == "FINISHED"
