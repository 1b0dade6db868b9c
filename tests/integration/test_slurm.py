"""The workflow on a real single-node SLURM (tests/integration/slurm_cluster.py).

The micro recipe goes through snakemake-executor-plugin-slurm with the test profile (one sbatch
job per workflow job) and must land on the local run's digests, each manifest naming its SLURM
job; a job that exits non-zero must be reported as failed with its log paths.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from reprolm.plan import load_plan
from reprolm.resume import checkpoint_dir
from stages.common.checkpoints import MARKER
from tests.integration.slurm_cluster import SlurmCluster, SlurmUnavailable, ensure_packages
from tests.support import MICRO, ROOT, checkout_env, clone_workspace, make_checkout, run_snakemake

PROFILE = ROOT / "tests" / "integration" / "slurm_profile"
TIMEOUT_S = 900

# `make test` distributes whole modules (pytest-xdist --dist loadscope): one worker runs every
# test of this one, and its session fixture starts one SLURM cluster per host.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def slurm_cluster():
    """munged + slurmctld + slurmd on this host for the session; skipped only when apt-get
    cannot install slurm-wlm/munge (no route to the Debian mirror)."""
    try:
        ensure_packages()
    except SlurmUnavailable as error:
        pytest.skip(f"no SLURM: {error}")
    cluster = SlurmCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def run_on_slurm(
    cluster: SlurmCluster,
    checkout: Path,
    *args: str,
    recipe: str = MICRO,
    during: Callable[[], None] | None = None,
) -> tuple[int, str, float]:
    """Snakemake through the SLURM test profile; ``(exit code, output, seconds)``.

    ``during`` is called once snakemake has started (to act on its running jobs). A hung
    snakemake ignores SIGTERM, so a timeout sends SIGINT (it then cancels its jobs).
    """
    profile = checkout / "slurm_profile"
    if not profile.exists():
        shutil.copytree(PROFILE, profile)
    command = [sys.executable, "-m", "snakemake", "--profile", "slurm_profile", *args]
    command += ["--configfile", recipe]
    env = {**checkout_env(checkout), **cluster.env(), "REPROLM_MLFLOW": "off"}
    started = time.monotonic()
    with open(checkout / "snakemake.out", "w") as out:
        process = subprocess.Popen(
            command, cwd=checkout, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            if during is not None:
                during()
            code = process.wait(timeout=TIMEOUT_S)
        except (subprocess.TimeoutExpired, AssertionError) as error:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            if isinstance(error, AssertionError):  # raised by `during`
                raise
            output = (checkout / "snakemake.out").read_text()
            raise AssertionError(f"snakemake hung for {TIMEOUT_S} s:\n{output[-6000:]}") from None
    return code, (checkout / "snakemake.out").read_text(), time.monotonic() - started


def test_micro_recipe_on_slurm_matches_local_digests(slurm_cluster, micro_workspace, tmp_path):
    checkout = make_checkout(tmp_path / "slurm")
    code, output, seconds = run_on_slurm(slurm_cluster, checkout)
    assert code == 0, f"{output[-6000:]}\n{slurm_cluster.logs()}"
    up = slurm_cluster.bring_up_s
    print(f"micro recipe on SLURM: {seconds:.1f} s (cluster up in {up:.1f} s)")

    plan = load_plan(checkout / MICRO)
    job_ids = set()
    for job in plan.jobs.values():
        on_slurm = json.loads((checkout / job.manifest).read_text())
        local = json.loads((micro_workspace / job.manifest).read_text())
        assert on_slurm["digest"] == local["digest"], f"{job.key}: SLURM and local digests differ"
        slurm_job_id = on_slurm["execution"].get("slurm_job_id")
        assert slurm_job_id, f"{job.key}: no execution.slurm_job_id in {job.manifest}"
        job_ids.add(str(slurm_job_id))
    assert len(job_ids) == len(plan.jobs), "every job is its own SLURM job"
    assert f"submitted with SLURM jobid {min(job_ids, key=int)}" in output


def test_failing_job_is_reported_with_its_logs(slurm_cluster, tmp_path):
    checkout = make_checkout(tmp_path / "broken")
    stage = checkout / "stages" / "world" / "stage.py"
    stage.write_text(
        stage.read_text()
        + "\n\ndef run(*args, **kwargs):  # noqa: F811\n"
        + "    raise SystemExit('world deliberately broken for the SLURM failure test')\n"
    )
    world = load_plan(checkout / MICRO).get("world", "world")

    code, output, _ = run_on_slurm(slurm_cluster, checkout, world.manifest)

    assert code != 0
    assert "Error in rule world" in output
    assert "SLURM status is: 'FAILED'" in output
    assert world.log in output, "the stage's own log is named"
    assert "logs/slurm/rule_world/" in output, "the sbatch log is named"
    assert "deliberately broken" in (checkout / world.log).read_text()
    assert output.count("has been submitted with SLURM jobid") == 2, "one retry (test profile)"
    assert not (checkout / world.manifest).exists()


def test_cancelled_training_job_resumes_from_its_checkpoint(
    slurm_cluster, micro_workspace, tmp_path
):
    """``scancel`` of the running pretrain job: the profile's retry resubmits it, and it resumes
    from its last checkpoint to the digest of an uninterrupted local run.

    The checkout is a copy of the session's micro run, so its world, curate and tokenize
    artifacts exist and only pretrain (new steps, new fingerprint) goes to SLURM: each SLURM job
    costs >= 33 s here, the plugin's status-check backoff (1 s, then +10 s per check)."""
    recipe = yaml.safe_load((ROOT / MICRO).read_text())
    recipe["pretrain"]["steps"] = 40  # ~10 s of training: long enough to cancel mid-run
    recipe["resources"] = {"pretrain": {"checkpoint_every": 5}}
    checkout = clone_workspace(micro_workspace, tmp_path / "resume")
    (checkout / "config" / "micro-resume.yaml").write_text(yaml.safe_dump(recipe))
    variant = "config/micro-resume.yaml"
    pretrain = load_plan(checkout / variant).get("pretrain", "pretrain")
    complete = checkpoint_dir(checkout / pretrain.artifact_dir) / "checkpoint-10" / MARKER
    cancelled: list[str] = []

    def cancel_after_first_checkpoints() -> None:
        deadline = time.monotonic() + TIMEOUT_S / 2
        while not complete.exists():
            assert time.monotonic() < deadline, "no checkpoint-10 appeared"
            time.sleep(0.05)
        env = {**os.environ, **slurm_cluster.env()}
        queue = subprocess.run(
            ["squeue", "-h", "-o", "%i %k"], env=env, capture_output=True, text=True, check=True
        ).stdout.split("\n")
        cancelled.extend(line.split()[0] for line in queue if "rule_pretrain" in line)
        subprocess.run(["scancel", *cancelled], env=env, check=True)

    code, output, seconds = run_on_slurm(
        slurm_cluster, checkout, pretrain.manifest, recipe=variant,
        during=cancel_after_first_checkpoints,
    )  # fmt: skip
    assert code == 0, f"{output[-6000:]}\n{slurm_cluster.logs()}"
    assert "rule world:" not in output and "rule tokenize:" not in output, "only pretrain ran"
    assert len(cancelled) == 1, "one running pretrain job was cancelled"
    assert "SLURM status is: 'CANCELLED'" in output
    manifest = json.loads((checkout / pretrain.manifest).read_text())
    resumed = manifest["execution"]["resumed_from_step"]
    assert resumed is not None and 10 <= resumed < 40, f"resumed from {resumed}"
    assert str(manifest["execution"]["slurm_job_id"]) != cancelled[0], "a resubmitted job"
    assert "resume: resuming from" in (checkout / pretrain.log).read_text()
    assert not checkpoint_dir(checkout / pretrain.artifact_dir).exists()

    local = clone_workspace(micro_workspace, tmp_path / "local")
    shutil.copy(checkout / variant, local / variant)
    run_snakemake(local, pretrain.manifest, recipe=variant)
    reference = json.loads((local / pretrain.manifest).read_text())
    assert reference["execution"]["resumed_from_step"] is None
    assert manifest["digest"] == reference["digest"], "resumed on SLURM != uninterrupted local"
    print(f"cancel + resume on SLURM: {seconds:.1f} s")
