"""The committed per-job reference of the tiny recipe (benchmarks/reference_records.py).

``test_committed_reference_is_fresh`` fails as soon as a commit changes the code of a stage (its
``reprolm.codedigest.code_digest``, which covers the job code it imports and the payload platform
modules) or moves a fingerprint of the tiny recipe (a schema default) without refreshing
``benchmarks/results/tiny-reference.json``. That is intended: the reference is only worth
comparing against while it describes the current code. The failure message gives the command
(``python benchmarks/reference_records.py write``, 5-20 min on 2 cores) to run on the machine
that runs CI; commit its output with the code change.
"""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import pytest

from reprolm.hashing import hash_bytes
from reprolm.plan import load_plan

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "config" / "tiny.yaml"
_spec = importlib.util.spec_from_file_location(
    "reference_records", ROOT / "benchmarks" / "reference_records.py"
)
records = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(records)


def test_committed_reference_is_fresh() -> None:
    path = records.reference_path(TINY)
    reference = json.loads(path.read_text(encoding="utf-8"))
    problems = records.stale(reference, TINY)
    assert not problems, records.stale_message(path, problems, TINY)
    assert reference["machine"]["cpu_model"] and reference["numerics"]["pinned"] is True
    assert all(job["pinned_isa"] == "avx2" for job in reference["jobs"].values())


@pytest.fixture(scope="module")
def plan():
    return load_plan(TINY)


def _manifest(job, digests: dict[str, str], native: bool = False) -> dict:
    from reprolm.codedigest import code_digest

    numerics = {"pinned": not native, "pinned_isa": None if native else "avx2",
                "torch_cpu_capability": "AVX2", "cpu_flags": {"avx2": True, "avx512f": False},
                "cpu_model": "Test CPU"}  # fmt: skip
    return {
        "stage": job.stage, "label": job.label, "fingerprint": job.fingerprint, "files": {},
        "digest": digests[job.key], "code": {"code_digest": code_digest(job.stage), "commit": "c"},
        "inputs": {name: {"digest": digests[key]} for name, key in job.inputs.items()},
        "reproducibility": {"level": "bitwise"},
        "environment": {"cpu_model": "Test CPU", "cpu_count": 2, "packages": {"torch": "2"},
                        "numerics": numerics},
    }  # fmt: skip


def _run(workdir: Path, plan, digests: dict[str, str], native: bool = False) -> None:
    """A fake finished run: one manifest per planned job, at its planned path."""
    for job in plan.jobs.values():
        path = workdir / job.manifest
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(_manifest(job, digests, native)), encoding="utf-8")


def _digests(plan, **changed: str) -> dict[str, str]:
    # Manifest-format digests (64 hex digits), named for the test.
    named = {key: changed.get(key.replace("/", "_"), f"d-{key}") for key in plan.jobs}
    return {key: hash_bytes(name.encode()) for key, name in named.items()}


def test_write_then_compare_same_run(tmp_path, plan) -> None:
    _run(tmp_path, plan, _digests(plan))
    reference = records.build_reference(TINY, tmp_path)
    assert set(reference["jobs"]) == set(plan.jobs)
    assert reference["machine"]["isa_flags"] == "avx2"
    assert "cpu_flags" not in reference["numerics"]
    result = records.compare(reference, TINY, tmp_path)
    assert {job["status"] for job in result["jobs"].values()} == {"same"}
    assert result["mismatches"] == [] and result["stale_stages"] == []


def test_payload_mismatch_exits_1_and_downstream_says_inputs(tmp_path, plan) -> None:
    reference = tmp_path / "reference.json"
    _run(tmp_path / "ci", plan, _digests(plan))
    reference.write_text(json.dumps(records.build_reference(TINY, tmp_path / "ci")))
    _run(tmp_path / "here", plan, _digests(plan, pretrain_pretrain="p2", sft_sft="s2"))
    args = ["compare", "--workdir", str(tmp_path / "here"), "--reference", str(reference)]
    assert records.main([*args, "--json"]) == 1
    result = records.compare(json.loads(reference.read_text()), TINY, tmp_path / "here")
    assert result["mismatches"] == ["pretrain/pretrain"]
    assert result["jobs"]["sft/sft"]["status"] == "inputs differ"
    assert result["jobs"]["tokenize/tokenize"]["status"] == "same"


def test_code_change_native_and_missing_are_not_mismatches(tmp_path, plan) -> None:
    _run(tmp_path, plan, _digests(plan))
    reference = records.build_reference(TINY, tmp_path)
    stale = copy.deepcopy(reference)
    stale["jobs"]["pretrain/pretrain"]["code_digest"] = "old"
    _run(tmp_path, plan, _digests(plan, pretrain_pretrain="new"))
    result = records.compare(stale, TINY, tmp_path)
    assert result["jobs"]["pretrain/pretrain"]["status"] == "code changed"
    assert result["stale_stages"] == ["pretrain"] and result["mismatches"] == []

    _run(tmp_path, plan, _digests(plan, pretrain_pretrain="native"), native=True)
    result = records.compare(reference, TINY, tmp_path)
    assert result["jobs"]["pretrain/pretrain"]["status"] == "numerics differ"

    (tmp_path / plan.get("release", "release").manifest).unlink()
    result = records.compare(reference, TINY, tmp_path)
    assert result["jobs"]["release/release"]["status"] == "missing"
    assert result["mismatches"] == []


def test_check_fresh_names_the_stage_and_the_refresh_command(tmp_path, plan, capsys) -> None:
    _run(tmp_path, plan, _digests(plan))
    reference = records.build_reference(TINY, tmp_path)
    path = tmp_path / "reference.json"
    path.write_text(json.dumps(reference))
    assert records.main(["check-fresh", "--reference", str(path)]) == 0
    reference["jobs"]["sft/sft"]["code_digest"] = "0" * 64
    path.write_text(json.dumps(reference))
    assert records.main(["check-fresh", "--reference", str(path)]) == 1
    message = capsys.readouterr().err
    assert "sft/sft: code digest 0000000000000000 ->" in message
    assert "python benchmarks/reference_records.py write\n" in message + "\n"


def test_a_release_that_differs_only_in_its_embedded_manifests_is_not_a_mismatch() -> None:
    """A release embeds its upstream manifests (lineage/), with each run's times and host: two
    independent runs differ there and nowhere else. Any other file still counts."""
    from reprolm.hashing import payload_digest

    def release(card: str, when: str) -> dict:
        files = {"README.md": {"hash": card, "size": 1},
                 "lineage/sft-1.json": {"hash": when, "size": 1}}  # fmt: skip
        return {"stage": "release", "label": "release", "fingerprint": "f", "inputs": {},
                "code": {"code_digest": "c"}, "files": files, "digest": payload_digest(files),
                "reproducibility": {"level": "bitwise"},
                "environment": {"numerics": {"pinned": True, "pinned_isa": "avx2"}}}  # fmt: skip

    ours = records.job_record(release("card", "01:18"))
    status, _ = records.compare_job(ours, records.job_record(release("card", "02:22")))
    assert status == records.RECORDS
    status, _ = records.compare_job(ours, records.job_record(release("other card", "02:22")))
    assert status == records.DIFFERS
