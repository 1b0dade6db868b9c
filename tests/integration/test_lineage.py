"""``reprolm audit``, ``lineage``, ``diff`` and ``export-prov`` on real micro-recipe artifacts.

Mutations (a flipped byte, an edited manifest, a deleted input, a release copied alone) are made
in copies of the session's micro workspace, never in the workspace itself.
"""

from __future__ import annotations

import json
import shutil
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from reprolm.audit import audit
from reprolm.plan import load_plan
from tests.support import MICRO, reprolm

pytestmark = pytest.mark.slow


def run(workspace: Path, *args: str, cwd: Path | None = None) -> tuple[int, dict | str]:
    done = reprolm(workspace, *args, cwd=cwd)
    assert "Traceback" not in done.stderr, done.stderr
    if "--json" in args and done.returncode in (0, 1):
        return done.returncode, json.loads(done.stdout)
    return done.returncode, done.stdout + done.stderr


def node_id(job) -> str:
    return f"{job.stage}/{job.label}-{job.fingerprint}"


@pytest.fixture
def copy(micro_workspace, tmp_path) -> Path:
    """A mutable copy of the micro workspace's artifacts (audit needs no code)."""
    shutil.copytree(micro_workspace / "artifacts", tmp_path / "artifacts")
    return tmp_path


@pytest.fixture(scope="module")
def plan(micro_workspace):
    return load_plan(micro_workspace / MICRO)


def test_untouched_tree_audits_clean(micro_workspace, plan):
    release = plan.release
    code, report = run(micro_workspace, "audit", "--json", release.artifact_dir)
    assert code == 0, report
    assert report["ok"] and report["problems"] == [] and report["missing_payloads"] == []
    assert {node["id"] for node in report["nodes"]} == {node_id(j) for j in plan.jobs.values()}
    for node in report["nodes"]:
        assert node["source"] == "disk"
        for check in ("payload", "fingerprint", "inputs"):
            assert node["checks"][check]["status"] == "ok", node
        # The checkout copy is no DVC repo: said, not silently passed.
        assert node["checks"]["dvc"]["status"] == "not checked"
        # Runs the workflow tracked in its embedded MLflow store exist and agree.
        manifest = json.loads((micro_workspace / node["path"] / "provenance.json").read_text())
        tracked = manifest.get("mlflow_run_id") and (micro_workspace / "mlruns.db").exists()
        expected = "ok" if tracked else "not checked"
        assert node["checks"]["mlflow"]["status"] == expected, node["checks"]["mlflow"]
        if node["id"] != report["top"]:
            assert node["checks"]["embedded"]["status"] == "ok"
    assert report["stats"]["bytes_hashed"] > 0
    code, text = run(micro_workspace, "audit", release.artifact_dir)
    assert code == 0 and "clean" in text


def test_targets_by_fingerprint_and_metrics_file(micro_workspace, plan):
    sft = plan.get("sft", "sft")
    code, report = run(micro_workspace, "audit", "--json", sft.fingerprint)
    assert code == 0 and report["top"] == node_id(sft)
    # sft, pretrain, tokenize, curate, world, evaldata (curate decontaminates against it)
    assert len(report["nodes"]) == 6
    evaluation = plan.get("evaluate", "dpo")
    code, report = run(
        micro_workspace, "audit", "--json", f"{evaluation.artifact_dir}/results.json"
    )
    assert code == 0 and report["top"] == node_id(evaluation)
    code, text = run(micro_workspace, "audit", "0123456789ab")
    assert code == 2 and "no artifact with this fingerprint" in text
    code, text = run(micro_workspace, "audit", "config")
    assert code == 2 and "neither an artifact directory" in text


def test_flipped_byte_in_checkpoint_names_that_file(copy, plan):
    sft = plan.get("sft", "sft")
    weights = copy / sft.artifact_dir / "model" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    code, report = run(copy, "audit", "--json", plan.release.artifact_dir, cwd=copy)
    assert code == 1
    assert report["problems"] == [f"{node_id(sft)}: changed: model/model.safetensors"]
    assert report["missing_payloads"] == []
    code, text = run(copy, "audit", plan.release.artifact_dir, cwd=copy)
    assert code == 1 and f"{node_id(sft)}: changed: model/model.safetensors" in text


def test_edited_manifest_config_names_that_manifest(copy, plan):
    sft = plan.get("sft", "sft")
    manifest_path = copy / sft.artifact_dir / "provenance.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["config"]["learning_rate"] *= 10
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    dpo = plan.get("dpo", "dpo")
    code, report = run(copy, "audit", "--json", dpo.artifact_dir, cwd=copy)
    assert code == 1
    [problem] = report["problems"]
    assert problem.startswith(f"{node_id(sft)}: fingerprint ")
    assert f"!= recorded {sft.fingerprint} (sft-{sft.fingerprint}/provenance.json" in problem
    # From the release, the bill of materials also disagrees; both name the sft manifest only.
    code, report = run(copy, "audit", "--json", plan.release.artifact_dir, cwd=copy)
    assert code == 1 and len(report["problems"]) == 2
    assert all(p.startswith(f"{node_id(sft)}: ") for p in report["problems"])
    assert any("disagrees with the manifest on disk on: config" in p for p in report["problems"])


def test_rewritten_digest_breaks_the_downstream_link(copy, plan):
    """A checkpoint replaced with its manifest re-written to match: the next link breaks."""
    sft, dpo = plan.get("sft", "sft"), plan.get("dpo", "dpo")
    manifest_path = copy / sft.artifact_dir / "provenance.json"
    manifest = json.loads(manifest_path.read_text())
    old = manifest["digest"]
    manifest["digest"] = "0" * 64
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    code, report = run(copy, "audit", "--json", dpo.artifact_dir, cwd=copy)
    assert code == 1
    assert (
        f"{node_id(dpo)}: input model digest {old[:16]} != sft manifest digest {'0' * 16}"
        in (report["problems"])
    )
    assert any(p.startswith(f"{node_id(sft)}: ") for p in report["problems"])


def test_deleted_input_names_the_link(copy, plan):
    evaluation = plan.get("evaluate", "sft")
    shutil.rmtree(copy / evaluation.artifact_dir)
    code, report = run(copy, "audit", "--json", plan.release.artifact_dir, cwd=copy)
    assert code == 1
    assert report["missing_payloads"] == [
        f"{node_id(plan.release)}: input eval_sft missing: {evaluation.artifact_dir}",
        f"{node_id(evaluation)}: payload not on disk (manifest checked from the release's "
        "lineage/)",
    ]
    assert report["problems"] == []  # its manifest still checks out from the bill of materials
    curate = plan.get("curate", "curate")
    shutil.rmtree(copy / curate.artifact_dir)
    code, report = run(copy, "audit", "--json", plan.get("sft", "sft").artifact_dir, cwd=copy)
    assert code == 1
    assert report["missing_payloads"] == [
        f"sft/sft-{plan.get('sft', 'sft').fingerprint}: input data missing: {curate.artifact_dir}",
        f"{node_id(plan.get('tokenize', 'tokenize'))}: input curate missing: {curate.artifact_dir}",
    ]


def test_release_copied_alone(micro_workspace, plan, tmp_path):
    release = plan.release
    alone = tmp_path / "elsewhere" / Path(release.artifact_dir).name
    shutil.copytree(micro_workspace / release.artifact_dir, alone)
    code, report = run(micro_workspace, "audit", "--json", str(alone), cwd=tmp_path)
    assert code == 1 and report["problems"] == []
    upstream = {node_id(j) for j in plan.jobs.values()} - {node_id(release)}
    assert {n["id"] for n in report["nodes"]} == upstream | {node_id(release)}
    for node in report["nodes"]:
        if node["id"] == node_id(release):
            assert node["checks"]["payload"]["status"] == "ok"
        else:  # manifests from lineage/: fingerprints recomputed, digests chained
            assert node["source"] == "embedded"
            assert node["checks"]["fingerprint"]["status"] == "ok"
            assert node["checks"]["payload"]["status"] == "missing"
    missing = [m for m in report["missing_payloads"] if "payload not on disk" in m]
    assert sorted(m.split(":")[0] for m in missing) == sorted(upstream)
    code, text = run(micro_workspace, "audit", str(alone), cwd=tmp_path)
    assert code == 1 and f"missing upstream payloads ({len(report['missing_payloads'])})" in text
    code, _ = run(micro_workspace, "audit", "--allow-missing", str(alone), cwd=tmp_path)
    assert code == 0
    # Tampering with the bill of materials is caught by the release's own payload check.
    embedded = alone / "lineage" / f"sft-{plan.get('sft', 'sft').fingerprint}.json"
    embedded.write_text(embedded.read_text().replace('"learning_rate"', '"learning_rate" '))
    code, report = run(micro_workspace, "audit", "--json", str(alone), cwd=tmp_path)
    assert code == 1
    assert any(p.startswith(f"{node_id(release)}: size changed: lineage/{embedded.name}")
               for p in report["problems"]), report["problems"]  # fmt: skip


def test_lineage_upstream_and_reverse(two_runs):
    workspace, first, second = two_runs
    old_sft, new_sft = first.get("sft", "sft"), second.get("sft", "sft")
    code, tree = run(workspace, "lineage", "--json", old_sft.artifact_dir)
    assert code == 0 and tree["id"] == node_id(old_sft)
    assert tree["inputs"]["model"]["id"] == node_id(first.get("pretrain", "pretrain"))
    assert tree["inputs"]["model"]["inputs"]["tokenize"]["inputs"]["curate"]["id"] == node_id(
        first.get("curate", "curate")
    )
    code, text = run(workspace, "lineage", old_sft.artifact_dir)
    assert code == 0 and text.splitlines()[1].startswith("  data: curate/curate-")

    def ids(tree: dict) -> set[str]:
        found = {tree["id"]}
        for child in tree.get("dependents", []):
            found |= ids(child)
        return found

    code, reverse = run(workspace, "lineage", "--reverse", "--json", old_sft.artifact_dir)
    assert code == 0
    old_downstream = {
        node_id(first.get(*key))
        for key in (("dpo", "dpo"), ("rlvr", "rlvr"), ("release", "release"))
    } | {node_id(j) for j in first.by_stage("evaluate") if j.label != "pretrain"}
    assert ids(reverse) == {node_id(old_sft)} | old_downstream
    pretrain = first.get("pretrain", "pretrain")
    code, reverse = run(workspace, "lineage", "--reverse", "--json", pretrain.artifact_dir)
    assert {node_id(old_sft), node_id(new_sft)} <= ids(reverse)
    assert node_id(second.release) in ids(reverse)


def test_diff_names_the_changed_learning_rate(two_runs):
    workspace, first, second = two_runs
    old_rate = first.get("sft", "sft").config["learning_rate"]
    new_rate = second.get("sft", "sft").config["learning_rate"]
    code, result = run(
        workspace, "diff", "--json", first.release.artifact_dir, second.release.artifact_dir
    )
    assert code == 0 and not result["identical"]
    [sft_entry] = [e for e in result["nodes"] if e["a"] == node_id(first.get("sft", "sft"))]
    assert sft_entry["b"] == node_id(second.get("sft", "sft"))
    assert sft_entry["via"][-1] == "model"  # each pair once, under the first path that reaches it
    assert sft_entry["config"] == [
        {"key": "learning_rate", "old": old_rate, "new": new_rate, "kind": "changed"}
    ]
    assert sft_entry["code"] == [] and sft_entry["environment"] == []
    # Nothing upstream of sft differs, and no entry is about pretrain/curate/world.
    assert not any(e["a"].startswith(("pretrain/", "curate/", "world/")) for e in result["nodes"])
    code, text = run(workspace, "diff", first.release.artifact_dir, second.release.artifact_dir)
    assert code == 0 and f"config.learning_rate: {old_rate!r} → {new_rate!r}" in text
    code, same = run(workspace, "diff", "--json", first.release.artifact_dir,
                     first.release.artifact_dir)  # fmt: skip
    assert code == 0 and same["identical"]


def test_export_prov(micro_workspace, plan, tmp_path):
    out = tmp_path / "release.prov.json"
    code, _ = run(micro_workspace, "export-prov", plan.release.artifact_dir, "-o", str(out))
    assert code == 0
    document = json.loads(out.read_text())
    assert document["prefix"]["artifact"].startswith("urn:reprolm:")
    assert len(document["entity"]) == len(document["activity"]) == len(plan.jobs)
    entity = document["entity"][f"artifact:sft-sft-{plan.get('sft', 'sft').fingerprint}"]
    assert entity["reprolm:fingerprint"] == plan.get("sft", "sft").fingerprint
    assert len(entity["reprolm:digest"]) == 64
    assert all("prov:startTime" in a and "prov:endTime" in a for a in document["activity"].values())
    inputs = sum(len(j.inputs) for j in plan.jobs.values())
    assert len(document["used"]) == len(document["wasDerivedFrom"]) == inputs
    assert len(document["wasGeneratedBy"]) == len(plan.jobs)
    for relation in document["used"].values():
        assert relation["prov:activity"] in document["activity"]
        assert relation["prov:entity"] in document["entity"]
    # The reference implementation reads it back (prov==3.2.3 on PyPI).
    prov_model = pytest.importorskip("prov.model")
    parsed = prov_model.ProvDocument.deserialize(content=out.read_text(), format="json")
    records = parsed.get_records()
    assert sum(isinstance(r, prov_model.ProvEntity) for r in records) == len(plan.jobs)
    assert sum(isinstance(r, prov_model.ProvUsage) for r in records) == inputs


def test_dvc_and_mlflow_hooks_are_asked_and_heard(copy, plan, monkeypatch):
    """The audit's side of ``reprolm.dvc.artifact_status`` and ``reprolm.tracking.run_status``."""
    sft, world = plan.get("sft", "sft"), plan.get("world", "world")
    (copy / ".dvc").mkdir()  # the tree is now "in a DVC repository"
    manifest_path = copy / sft.artifact_dir / "provenance.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["mlflow_run_id"] = "run-sft"  # not part of fingerprint or digest
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True))

    def artifact_status(artifact_dir):
        record = {
            "tracked": True,
            "stage": "x",
            "md5": "abc.dir",
            "nfiles": 1,
            "workspace": "clean",
            "in_cache": True,
            "in_remote": True,
            "remote": "local",
        }
        if Path(artifact_dir).name == Path(world.artifact_dir).name:
            record.update(in_cache=False, in_remote=False)
        return record  # fmt: skip

    def run_status(run_id, where=None):
        assert Path(where) == copy.resolve()
        if run_id != "run-sft":  # runs the workflow itself tracked (if any): no tags to compare
            return {"exists": True, "run_id": run_id, "status": "FINISHED"}
        return {"exists": True, "run_id": run_id, "fingerprint": sft.fingerprint,
                "digest": "f" * 64, "stage": "sft", "status": "FINISHED"}  # fmt: skip

    fake_dvc, fake_tracking = types.ModuleType("reprolm.dvc"), types.ModuleType("reprolm.tracking")
    fake_dvc.artifact_status = artifact_status
    fake_tracking.run_status = run_status
    fake_tracking.tracking_uri = lambda where=None: "http://127.0.0.1:1"
    monkeypatch.setitem(sys.modules, "reprolm.dvc", fake_dvc)
    monkeypatch.setitem(sys.modules, "reprolm.tracking", fake_tracking)
    report = audit(copy / sft.artifact_dir)
    checks = {node.node.id: node.checks for node in report.nodes}
    assert checks[node_id(sft)]["dvc"]["status"] == "ok"
    assert checks[node_id(world)]["dvc"]["status"] == "broken"
    assert checks[node_id(sft)]["mlflow"]["status"] == "broken"
    assert report.problems == [
        f"{node_id(sft)}: mlflow: run run-sft tag digest {'f' * 16} != manifest digest "
        f"{manifest['digest'][:16]}",
        f"{node_id(world)}: dvc: neither DVC cache nor remote holds abc.dir (cache no, remote "
        "local no)",
    ]


def audit_with(cli: Path, copy: Path, *args: str, **env: str) -> tuple[int, Any, str]:
    """``reprolm audit --json`` in ``copy`` with the CLI of ``cli`` (the copy holds artifacts
    only) and extra environment: (exit, report or None, stderr)."""
    done = reprolm(cli, "audit", "--json", *args, cwd=copy, env=env)
    assert "Traceback" not in done.stderr, done.stderr
    report = json.loads(done.stdout) if done.returncode in (0, 1) else None
    return done.returncode, report, done.stderr


def mlflow_checks(report: dict) -> set[str]:
    return {node["checks"]["mlflow"]["status"] for node in report["nodes"]}


def test_no_mlflow_store_here_is_not_checkable_unless_required(copy, micro_workspace, plan):
    """A fresh clone's situation: the tracking store is empty or another project's. Listed,
    exit 0; ``--require mlflow`` exits 1 saying why and how to make it checkable."""
    release = plan.release.artifact_dir
    empty = copy / "empty.db"
    empty.touch()
    uri = f"sqlite:///{empty}"
    code, report, _ = audit_with(micro_workspace, copy, release, MLFLOW_TRACKING_URI=uri)
    assert code == 0 and report["problems"] == [], report["problems"]
    assert mlflow_checks(report) == {"not checked"}
    mlflow = [entry for entry in report["not_checkable"] if ": mlflow: " in entry]
    assert len(mlflow) == len(plan.jobs) and all("is empty" in entry for entry in mlflow)
    assert empty.stat().st_size == 0  # the audit wrote nothing into it
    code, report, stderr = audit_with(
        micro_workspace, copy, release, "--require", "mlflow", MLFLOW_TRACKING_URI=uri
    )
    assert code == 1 and report["problems"] == [] and report["required"] == ["mlflow"]
    [message] = report["unmet_requirements"]
    assert message.startswith(f"--require mlflow: {len(plan.jobs)} of {len(plan.jobs)} mlflow")
    assert "is empty" in stderr and "MLFLOW_TRACKING_URI" in stderr
    assert "reprolm mlflow sync" in stderr
    # The store the workflow tracked in, asked for another experiment: tracked elsewhere.
    shutil.copy2(micro_workspace / "mlruns.db", copy / "mlruns.db")
    code, report, _ = audit_with(
        micro_workspace, copy, release, REPROLM_MLFLOW_EXPERIMENT="elsewhere"
    )
    assert code == 0 and mlflow_checks(report) == {"not checked"}
    code, text = run(micro_workspace, "audit", release, cwd=copy)
    assert code == 0 and "clean" in text and "not checkable here" in text  # dvc: no repo here
    code, _, stderr = audit_with(micro_workspace, copy, release, "--require", "mlflow,dvc")
    assert code == 1 and "--require dvc" in stderr and "--require mlflow" not in stderr
    code, _, stderr = audit_with(micro_workspace, copy, release, "--require", "git")
    assert code == 2 and "not one of mlflow, dvc" in stderr


def test_store_with_the_experiment_but_not_the_run_is_broken(copy, micro_workspace, plan):
    """The store holds the recipe's experiment: a lost run or another artifact's tag is a
    broken link, exit 1 without any --require."""
    from mlflow.tracking import MlflowClient

    shutil.copy2(micro_workspace / "mlruns.db", copy / "mlruns.db")
    client = MlflowClient(f"sqlite:///{copy / 'mlruns.db'}")
    experiment = client.get_experiment_by_name("reprolm")

    def run_of(job) -> str:
        manifest = json.loads((copy / job.manifest).read_text())
        event = manifest["mlflow_run_id"].split(":", 1)[1]
        [found] = client.search_runs(
            [experiment.experiment_id], f"tags.`reprolm.event_id` = '{event}'"
        )
        return found.info.run_id

    sft, dpo = plan.get("sft", "sft"), plan.get("dpo", "dpo")
    client.delete_run(run_of(sft))
    client.set_tag(run_of(dpo), "reprolm.digest", "0" * 64)
    code, report, _ = audit_with(micro_workspace, copy, plan.release.artifact_dir)
    assert code == 1
    assert sorted(p.split(": mlflow: ")[0] for p in report["problems"]) == sorted(
        [node_id(sft), node_id(dpo)]
    )
    assert any("not found in the tracking store" in p for p in report["problems"])
    assert any("tag digest 0000000000000000 != manifest digest" in p for p in report["problems"])
