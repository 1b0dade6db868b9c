"""Resuming training from checkpoints gives the uninterrupted run's payload, bit for bit.

The pretrain test is the real thing: ``python -m stages.pretrain`` (the runner) killed with
SIGKILL once a checkpoint is complete, then rerun. The post-training stages are checked in
process (cheaper): a run that leaves its checkpoints, then a second run resumed from an early one.
Checkpoint intervals are chosen off the logging interval on purpose (the trainers' loss and
metric accumulators must come back too).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from reprolm import resume
from reprolm.fingerprint import fingerprint
from reprolm.hashing import MANIFEST_NAME
from reprolm.plan import load_plan
from stages.common import checkpoints
from stages.common.job import JobContext
from tests.stages.micro import save_random_tiny_model
from tests.stages.test_training import payload_files, run_stage, stage_config
from tests.support import MICRO, ROOT, checkout_env

pytestmark = pytest.mark.slow

# Long enough to catch mid-run (~0.2 s a step here), short enough for CI.
PRETRAIN_STEPS, EVERY, KILL_AFTER = 30, 5, 10


def runner_call(workspace: Path, stage: str, config: dict, inputs: dict[str, str], label: str):
    """``(argv, output)`` of ``python -m stages.<stage>`` for this config, as the rules call it."""
    input_fps = {
        name: json.loads((workspace / path / MANIFEST_NAME).read_text())["fingerprint"]
        for name, path in inputs.items()
    }
    output = f"artifacts/{stage}/{label}-{fingerprint(stage, config, input_fps)}"
    argv = [sys.executable, "-m", f"stages.{stage}", "--config-json", json.dumps(config)]
    for name, path in inputs.items():
        argv += ["--input", f"{name}={path}"]
    return [*argv, "--output", output], output


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """world, evaldata -> curate -> tokenize of the micro recipe, run by the runner (manifests
    included); evaldata reads the bundled datasets relative to the working directory."""
    where = tmp_path_factory.mktemp("resume")
    shutil.copytree(ROOT / "data", where / "data")
    plan = load_plan(ROOT / MICRO)
    for stage in ("world", "evaldata", "curate", "tokenize"):
        job = plan.get(stage, stage)
        argv, _ = runner_call(where, stage, job.config, plan.input_dirs(job), stage)
        subprocess.run(argv, cwd=where, env=_env(), check=True, capture_output=True, timeout=300)
    return where


def _env() -> dict[str, str]:
    return checkout_env(ROOT, REPROLM_MLFLOW="off")


def _pretrain(workspace: Path, label: str) -> tuple[list[str], Path]:
    plan = load_plan(ROOT / MICRO)
    job = plan.get("pretrain", "pretrain")
    config = {**job.config, "steps": PRETRAIN_STEPS}
    argv, output = runner_call(workspace, "pretrain", config, plan.input_dirs(job), label)
    return argv, workspace / output


def test_killed_pretrain_resumes_to_the_uninterrupted_digest(workspace):
    argv, plain = _pretrain(workspace, "plain")
    started = time.monotonic()
    subprocess.run(argv, cwd=workspace, env=_env(), check=True, capture_output=True, timeout=600)
    plain_s = time.monotonic() - started
    reference = json.loads((plain / MANIFEST_NAME).read_text())
    assert reference["execution"]["resumed_from_step"] is None

    argv, output = _pretrain(workspace, "killed")
    argv += ["--checkpoint-every", str(EVERY)]
    store = resume.checkpoint_dir(output)
    complete = store / f"checkpoint-{KILL_AFTER}" / checkpoints.MARKER
    job = subprocess.Popen(argv, cwd=workspace, env=_env(), stdout=subprocess.DEVNULL)
    while not complete.exists() and job.poll() is None:
        time.sleep(0.02)
    job.send_signal(signal.SIGKILL)
    assert job.wait(timeout=60) == -signal.SIGKILL, "the job ended before it could be killed"
    assert not output.exists()
    steps = [step for step, _ in checkpoints.checkpoints(store)]
    assert KILL_AFTER in steps and max(steps) < PRETRAIN_STEPS
    last = max(steps)
    # A checkpoint cut off mid-save (as a kill during a save leaves it): no completion marker.
    cut = store / f"checkpoint-{last + EVERY}"
    shutil.copytree(store / f"checkpoint-{last}", cut)
    (cut / checkpoints.MARKER).unlink()
    (cut / "model.safetensors").write_bytes((cut / "model.safetensors").read_bytes()[:100])

    started = time.monotonic()
    rerun = subprocess.run(
        argv, cwd=workspace, env=_env(), capture_output=True, text=True, timeout=600
    )
    resumed_s = time.monotonic() - started
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    assert f"resume: skipping {cut.relative_to(workspace)}: incomplete" in rerun.stdout
    assert f"resuming from {(store / f'checkpoint-{last}').relative_to(workspace)}" in rerun.stdout
    manifest = json.loads((output / MANIFEST_NAME).read_text())
    assert manifest["execution"]["resumed_from_step"] == last
    assert manifest["digest"] == reference["digest"], "resumed run differs from uninterrupted"
    assert manifest["files"] == reference["files"]
    assert not store.exists(), "checkpoints are removed once the artifact is installed"
    assert not list(output.parent.glob(".killed-*.partial-*")), "the killed run's scratch is left"
    print(f"pretrain {PRETRAIN_STEPS} steps {plain_s:.1f} s; resumed at {last}: {resumed_s:.1f} s")


def test_killed_midtrain_and_soup_rerun_to_the_uninterrupted_digest(workspace):
    """midtrain under the runner (a short pretrain first), killed with SIGKILL once a checkpoint
    is complete, then rerun: the digest of the uninterrupted run. Then soup, killed and rerun."""
    recipe = yaml.safe_load((ROOT / MICRO).read_text())
    recipe["midtrain"] = {"mix": {"world": 0.5, "midtrain": 0.5}, "logging_steps": 3}
    plan = load_plan(recipe)
    job = plan.get("pretrain", "pretrain")
    argv, pretrain = runner_call(
        workspace, "pretrain", {**job.config, "steps": 4}, plan.input_dirs(job), "short"
    )
    subprocess.run(argv, cwd=workspace, env=_env(), check=True, capture_output=True, timeout=600)
    job = plan.get("midtrain", "midtrain")
    inputs = {**plan.input_dirs(job), "model": pretrain}
    config = {**job.config, "steps": PRETRAIN_STEPS, "batch_size": 4}
    argv, plain = runner_call(workspace, "midtrain", config, inputs, "plain")
    subprocess.run(argv, cwd=workspace, env=_env(), check=True, capture_output=True, timeout=600)
    reference = json.loads((workspace / plain / MANIFEST_NAME).read_text())

    argv, output = runner_call(workspace, "midtrain", config, inputs, "killed")
    argv += ["--checkpoint-every", str(EVERY)]
    store = resume.checkpoint_dir(workspace / output)
    complete = store / f"checkpoint-{KILL_AFTER}" / checkpoints.MARKER
    job = subprocess.Popen(argv, cwd=workspace, env=_env(), stdout=subprocess.DEVNULL)
    while not complete.exists() and job.poll() is None:
        time.sleep(0.02)
    job.send_signal(signal.SIGKILL)
    assert job.wait(timeout=60) == -signal.SIGKILL, "the job ended before it could be killed"
    last = max(step for step, _ in checkpoints.checkpoints(store))
    assert KILL_AFTER <= last < PRETRAIN_STEPS
    rerun = subprocess.run(
        argv, cwd=workspace, env=_env(), capture_output=True, text=True, timeout=600
    )
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    manifest = json.loads((workspace / output / MANIFEST_NAME).read_text())
    assert manifest["execution"]["resumed_from_step"] == last
    assert manifest["digest"] == reference["digest"], "resumed run differs from uninterrupted"
    assert manifest["files"] == reference["files"]

    # soup of the two under the runner: a run killed at once (wherever the kill lands: it saves
    # no checkpoint, the runner installs nothing partial) and its rerun give the first digest.
    inputs = {"model_midtrain": plain, "model_pretrain": pretrain}
    config = {"checkpoints": ["midtrain", "pretrain"], "seed": 0, "threads": 1}
    argv, first = runner_call(workspace, "soup", config, inputs, "first")
    subprocess.run(argv, cwd=workspace, env=_env(), check=True, capture_output=True, timeout=600)
    argv, again = runner_call(workspace, "soup", config, inputs, "again")
    killed = subprocess.Popen(argv, cwd=workspace, env=_env(), stdout=subprocess.DEVNULL)
    time.sleep(1.0)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=60)
    if killed.returncode == -signal.SIGKILL:
        assert not (workspace / again).exists(), "a killed soup left an artifact"
    subprocess.run(argv, cwd=workspace, env=_env(), check=True, capture_output=True, timeout=600)
    digests = [json.loads((workspace / p / MANIFEST_NAME).read_text()) for p in (first, again)]
    assert digests[0]["digest"] == digests[1]["digest"]
    assert digests[0]["files"] == digests[1]["files"]


@pytest.mark.parametrize(
    ("stage", "steps", "every", "resume_at"),
    [("sft", 8, 3, 3), ("dpo", 6, 2, 2), ("rlvr", 4, 3, 3)],
)
def test_post_training_resumes_bitwise(
    tokenize_artifact, curate_artifact, tmp_path, stage, steps, every, resume_at
):
    model = tmp_path / "upstream"
    save_random_tiny_model(tokenize_artifact, model / "model")
    inputs = {"model": model, "data": Path(curate_artifact)}
    config = stage_config(stage, steps=steps, logging_steps=2)
    store = tmp_path / "checkpoints"

    def context() -> JobContext:
        return JobContext(checkpoint_dir=store, checkpoint_every=every, checkpoint_keep=10)

    first = context()
    run_stage(stage, config, inputs, tmp_path / "first", first)
    assert first.resumed_step is None
    saved = [step for step, _ in checkpoints.checkpoints(store)]
    assert resume_at in saved and steps not in saved, "no checkpoint after the last step"
    for step, path in checkpoints.checkpoints(store):
        if step > resume_at:  # as if the job had been stopped right after resume_at
            shutil.rmtree(path)
    resumed = context()
    run_stage(stage, config, inputs, tmp_path / "resumed", resumed)
    assert resumed.resumed_step == resume_at
    assert payload_files(tmp_path / "resumed") == payload_files(tmp_path / "first")


def test_checkpoints_of_other_code_are_discarded(tmp_path, capsys):
    output = tmp_path / "artifacts" / "pretrain" / "pretrain-0123456789ab"
    with resume.checkpointing(output, "0123456789ab", "old-code", every=5, keep=2) as store:
        (store / "checkpoint-5").mkdir()
    with resume.checkpointing(output, "0123456789ab", "old-code", every=5, keep=2) as store:
        assert (store / "checkpoint-5").is_dir(), "same job, same code: kept for resuming"
    with resume.checkpointing(output, "0123456789ab", "new-code", every=5, keep=2) as store:
        assert not (store / "checkpoint-5").exists()
    assert "discarding" in capsys.readouterr().out
    with resume.checkpointing(tmp_path / "x" / "sft-0123456789ab", "fp", "c", every=0, keep=2) as d:
        assert d is None, "no checkpoints asked, none"


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        (["--checkpoint-every", "-1"], "--checkpoint-every -1: expected 0 (off)"),
        (["--checkpoint-keep", "1"], "--checkpoint-keep 1: keep at least 2"),
    ],
)
def test_bad_checkpoint_flags_are_refused(tmp_path, flag, message):
    argv = [sys.executable, "-m", "stages.pretrain", "--config-json", "{}", "--output", "x-1"]
    done = subprocess.run(
        [*argv, *flag], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2 and message in done.stderr
