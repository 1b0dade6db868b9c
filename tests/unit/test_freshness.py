"""Rerun decisions on content: which finished artifacts the checkout would not make as they are."""

from __future__ import annotations

import json
from pathlib import Path

from reprolm.codedigest import CODE_SCOPE, code_digest
from reprolm.freshness import stale_artifacts
from reprolm.plan import load_plan

ROOT = Path(__file__).resolve().parents[2]


def write(workdir: Path, job, *, digest: str, code: str | None = None, inputs=None) -> None:
    path = workdir / job.manifest
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"code_scope": CODE_SCOPE, "code_digest": code or code_digest(job.stage)}
    path.write_text(json.dumps({"digest": digest, "code": record, "inputs": inputs or {}}))


def test_current_artifacts_are_not_stale_whatever_their_mtimes(tmp_path):
    plan = load_plan(ROOT / "config/micro.yaml")
    world, curate = plan.get("world", "world"), plan.get("curate", "curate")
    write(tmp_path, curate, digest="c", inputs={"world": {"digest": "w"}})
    write(tmp_path, world, digest="w")  # written last: newer than what was built from it
    assert stale_artifacts(plan, tmp_path) == {}


def test_other_code_or_another_input_payload_is_stale(tmp_path):
    plan = load_plan(ROOT / "config/micro.yaml")
    world, curate = plan.get("world", "world"), plan.get("curate", "curate")
    tokenize = plan.by_stage("tokenize")[0]
    write(tmp_path, world, digest="w2")
    write(tmp_path, curate, digest="c", inputs={"world": {"digest": "w1"}})
    write(tmp_path, tokenize, digest="t", code="0" * 64, inputs={"curate": {"digest": "c"}})
    stale = stale_artifacts(plan, tmp_path)
    assert set(stale) == {curate.manifest, tokenize.manifest}
    assert "input 'world' is now payload w2" in stale[curate.manifest]
    assert "built by other tokenize job code" in stale[tokenize.manifest]


def test_unreadable_manifests_are_left_to_snakemake(tmp_path):
    plan = load_plan(ROOT / "config/micro.yaml")
    world = plan.get("world", "world")
    (tmp_path / world.manifest).parent.mkdir(parents=True)
    (tmp_path / world.manifest).write_text("{not json")
    assert stale_artifacts(plan, tmp_path) == {}


def test_current_artifacts_get_their_inputs_times_stale_ones_keep_theirs(tmp_path):
    import os

    from reprolm.freshness import align_times

    plan = load_plan(ROOT / "config/micro.yaml")
    world, curate = plan.get("world", "world"), plan.get("curate", "curate")
    tokenize, evaldata = plan.by_stage("tokenize")[0], plan.get("evaldata", "evaldata")
    write(tmp_path, world, digest="w")
    write(tmp_path, evaldata, digest="e")
    write(
        tmp_path, curate, digest="c", inputs={"world": {"digest": "w"}, "evaldata": {"digest": "e"}}
    )
    write(tmp_path, tokenize, digest="t", code="0" * 64, inputs={"curate": {"digest": "c"}})
    for job, stamp in ((world, 300), (evaldata, 200), (curate, 100), (tokenize, 50)):
        os.utime(tmp_path / job.manifest, (stamp, stamp))
    stale = stale_artifacts(plan, tmp_path)
    assert set(stale) == {tokenize.manifest}
    assert align_times(plan, stale, tmp_path) == [curate.manifest]
    assert (tmp_path / curate.manifest).stat().st_mtime == 300
    assert (tmp_path / tokenize.manifest).stat().st_mtime == 50, "a stale artifact keeps its time"
    assert align_times(plan, stale, tmp_path) == []
