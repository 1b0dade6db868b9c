"""Live training metrics against a real ``mlflow server`` on 127.0.0.1, from a real pretrain job
of the micro recipe (``python -m stages.pretrain``, the runner): the curve arrives while the job
trains, the job's run is completed in place (one run, no point twice), a job whose server is
away finishes and its metrics arrive with ``reprolm mlflow sync``, and neither progress nor live
logging changes a payload byte."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reprolm.hashing import MANIFEST_NAME
from reprolm.plan import load_plan
from tests.integration.mlflow_server import MlflowServer, free_port
from tests.stages.test_resume import runner_call
from tests.support import MICRO, ROOT, checkout_env

pytestmark = pytest.mark.slow

# A model larger than the micro recipe's (~6 steps/s on 2 shared cores, not ~60): the job trains
# for tens of seconds, longer than importing MLflow in the live thread takes (~2-20 s).
STEPS, LOGGING_STEPS = 240, 4
MODEL = {"hidden_size": 128, "intermediate_size": 512, "num_layers": 4, "num_heads": 4,
         "num_kv_heads": 4}  # fmt: skip
DIGESTS: dict[str, str] = {}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """world, evaldata -> curate -> tokenize of the micro recipe, made by the runner."""
    where = tmp_path_factory.mktemp("live")
    shutil.copytree(ROOT / "data", where / "data")
    plan = load_plan(ROOT / MICRO)
    for stage in ("world", "evaldata", "curate", "tokenize"):
        job = plan.get(stage, stage)
        argv, _ = runner_call(where, stage, job.config, plan.input_dirs(job), stage)
        env = checkout_env(ROOT, REPROLM_MLFLOW="off")
        subprocess.run(argv, cwd=where, env=env, check=True, capture_output=True, timeout=600)
    return where


def pretrain_call(workspace: Path, label: str) -> tuple[list[str], Path]:
    plan = load_plan(ROOT / MICRO)
    job = plan.get("pretrain", "pretrain")
    model = {**job.config["model"], **MODEL}
    config = {**job.config, "model": model, "steps": STEPS, "logging_steps": LOGGING_STEPS}
    argv, output = runner_call(workspace, "pretrain", config, plan.input_dirs(job), label)
    return argv, workspace / output


def job_env(uri: str, spool: Path) -> dict[str, str]:
    env = checkout_env(
        ROOT,
        MLFLOW_TRACKING_URI=uri,
        REPROLM_MLFLOW="on",  # a job run by hand logs a parent-less run
        REPROLM_MLFLOW_SPOOL=str(spool),
        REPROLM_MLFLOW_LIVE_INTERVAL="1",
        REPROLM_PROGRESS="log",
        REPROLM_PROGRESS_INTERVAL="3",
    )
    for name in ("REPROLM_MLFLOW_INVOCATION", "REPROLM_MLFLOW_PARENT_RUN", "REPROLM_MLFLOW_MODE"):
        env.pop(name, None)
    return env


def client_for(uri: str):
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def loss_steps(client, run_id: str) -> list[int]:
    return sorted(m.step for m in client.get_metric_history(run_id, "train/loss"))


def curve_steps(output: Path) -> list[int]:
    history = json.loads((output / "training" / "log_history.json").read_text())
    return [entry["step"] for entry in history if "loss" in entry]


def test_metrics_arrive_while_the_job_trains(workspace, tmp_path):
    server = MlflowServer(tmp_path / "server").start()
    try:
        client = client_for(server.uri)
        argv, output = pretrain_call(workspace, "live")
        env = job_env(server.uri, tmp_path / "spool")
        started = time.monotonic()
        job = subprocess.Popen(
            argv, cwd=workspace, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        seen: list[tuple[float, int]] = []  # (seconds since start, newest step on the server)
        run_id = None
        while job.poll() is None:
            time.sleep(0.5)
            experiment = client.get_experiment_by_name("reprolm")
            if experiment is None:
                continue
            runs = client.search_runs(
                [experiment.experiment_id], "tags.`reprolm.stage` = 'pretrain'"
            )
            if runs:
                run_id = runs[0].info.run_id
                steps = loss_steps(client, run_id)
                if steps and job.poll() is None:
                    seen.append((time.monotonic() - started, steps[-1]))
        _, stderr = job.communicate()
        wall = time.monotonic() - started
        assert job.returncode == 0, stderr[-4000:]

        during = sorted({step for _, step in seen})
        assert during and during[0] < STEPS, f"no metrics before the job ended: {seen}"
        assert len(during) >= 3, f"the curve did not grow while the job ran: {seen}"
        manifest = json.loads((output / MANIFEST_NAME).read_text())
        assert manifest["mlflow_run_id"] == run_id, "the live run is the job's run"
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED"
        assert run.data.tags["reprolm.complete"] == "true"
        assert run.data.tags["reprolm.digest"] == manifest["digest"]
        assert run.info.run_name.startswith("pretrain:live-")
        assert loss_steps(client, run_id) == curve_steps(output), "every point once, none lost"
        runs = client.search_runs(
            [client.get_experiment_by_name("reprolm").experiment_id],
            f"tags.`reprolm.fingerprint` = '{manifest['fingerprint']}'",
        )
        assert [r.info.run_id for r in runs] == [run_id]
        progress = [line for line in stderr.splitlines() if line.startswith("pretrain: step ")]
        assert (
            progress
            and "ETA" in progress[0]
            and progress[-1].startswith(f"pretrain: step {STEPS}/{STEPS} (100%)")
        )
        assert not list((tmp_path / "spool").glob("*.json")), "nothing spooled: server was up"
        rates = [line.split(", ")[1] for line in progress]
        print(f"live: progress rates {rates[-1:]}; job wall {wall:.1f} s")
        print(
            f"live: {len(seen)} polls saw steps {during[:3]}...{during[-1]} of {STEPS} while "
            f"the job ran ({wall:.1f} s); {len(progress)} progress lines"
        )
    finally:
        server.stop()
    DIGESTS["live"] = manifest["digest"]  # compared by the next test


def test_server_down_job_finishes_and_sync_delivers_later(workspace, tmp_path):
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    spool = tmp_path / "spool"
    argv, output = pretrain_call(workspace, "offline")
    started = time.monotonic()
    done = subprocess.run(
        argv, cwd=workspace, env=job_env(uri, spool), capture_output=True, text=True, timeout=900
    )
    wall = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stderr.count("reprolm mlflow live:") == 1, done.stderr[-3000:]
    assert "spooled to" in done.stderr
    events = [json.loads(p.read_text()) for p in sorted(spool.glob("*.json"))]
    assert [e["kind"] for e in events] == ["job"]
    assert events[0]["live_id"], "the event names its live run attempt"
    manifest = json.loads((output / MANIFEST_NAME).read_text())
    assert manifest["mlflow_run_id"].startswith("event:")
    if "live" in DIGESTS:  # same config, other label: live logging never touches a byte
        assert manifest["digest"] == DIGESTS["live"]

    server = MlflowServer(tmp_path / "server", port=port).start()
    try:
        sync = subprocess.run(
            [sys.executable, "-m", "reprolm.cli", "mlflow", "sync", "--json"],
            cwd=workspace, env=job_env(uri, spool), capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert sync.returncode == 0, sync.stdout + sync.stderr
        client = client_for(uri)
        runs = client.search_runs(
            [client.get_experiment_by_name("reprolm").experiment_id],
            f"tags.`reprolm.fingerprint` = '{manifest['fingerprint']}'",
        )
        assert len(runs) == 1 and runs[0].info.status == "FINISHED"
        assert loss_steps(client, runs[0].info.run_id) == curve_steps(output)
        assert not list(spool.glob("*.json"))
    finally:
        server.stop()
    print(f"server down: the job took {wall:.1f} s and spooled its event; sync delivered it")
    rates = [line.split(", ")[1] for line in done.stderr.splitlines() if "pretrain: step" in line]
    print(f"server down: progress rates {rates[-1:]}")
