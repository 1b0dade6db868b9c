"""A failing re-run of release under real Snakemake keeps the previous release artifact whole
(Snakemake deletes a failed job's declared provenance.json; reprolm.keep puts it back)."""

from __future__ import annotations

import pytest

from reprolm.manifest import read_manifest
from reprolm.plan import load_plan
from tests.support import clone_workspace, reprolm, run_snakemake

pytestmark = pytest.mark.slow


def test_failed_release_rerun_keeps_the_old_release(micro_workspace, tmp_path):
    checkout = clone_workspace(micro_workspace, tmp_path / "w")
    plan = load_plan(checkout / "config/micro.yaml")
    (release,) = [job for job in plan.jobs.values() if job.stage == "release"]
    artifact = checkout / release.artifact_dir
    before = read_manifest(artifact)["digest"]
    source = checkout / "stages" / "release" / "stage.py"
    text = source.read_text()
    source.write_text(
        text.replace(
            '    """Write model/', '    raise RuntimeError("edited")\n    """Write model/', 1
        )
    )
    failed = run_snakemake(checkout, check=False)
    assert failed.returncode != 0
    assert "Removing output files of failed job release" in failed.stderr + failed.stdout
    assert read_manifest(artifact)["digest"] == before
    assert reprolm(checkout, "verify", str(artifact)).returncode == 0
    source.write_text(text)
    run_snakemake(checkout)
    assert read_manifest(artifact)["digest"] == before
