"""The end-of-run summary: the one tasks x checkpoints table (``evals.table``), a row per
checkpoint, one primary column per world task and per spec."""

from __future__ import annotations

import json
from pathlib import Path

from reprolm import report
from reprolm.plan import load_plan
from tests.support import MICRO, ROOT

RESULTS = {
    "checkpoint": "pretrain",
    "tasks": {
        "arith_mc": {"acc": 0.5, "acc_norm": 0.4},  # acc_norm: not the primary
        "ifeval::tulu": {"prompt_level_loose_acc": 0.25, "inst_level_strict_acc": 0.1},
    },
    "primary_metrics": {"arith_mc": "acc", "ifeval::tulu": "prompt_level_loose_acc"},
    "task_types": {"arith_mc": "multiple_choice", "ifeval::tulu": "spec"},
    "instances": {"arith_mc": 4, "ifeval::tulu": 4},
}
IFEVAL = {
    "schema": "reprolm.eval.result/1",
    "task_id": "ifeval::tulu",
    "kind": "ifeval",
    "spec_hash": "a" * 64,
    "spec": {},
    "metrics": RESULTS["tasks"]["ifeval::tulu"],
    "primary_metric": "prompt_level_loose_acc",
    "primary": 0.25,
    "instances": 4,
}


def test_summary_renders_the_one_eval_table(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plan = load_plan(ROOT / MICRO)
    first = plan.by_stage("evaluate")[0]
    artifact = Path(first.artifact_dir)
    (artifact / "specs" / "ifeval__tulu").mkdir(parents=True)
    (artifact / "results.json").write_text(json.dumps(RESULTS), encoding="utf-8")
    (artifact / "specs" / "ifeval__tulu" / "result.json").write_text(json.dumps(IFEVAL))

    def manifest(path: Path) -> dict:
        if Path(path) != artifact:
            raise report.ManifestError(f"{path}: not run")
        return {"metrics": {}}

    monkeypatch.setattr(report, "read_manifest", manifest)
    lines = report.eval_table(plan).splitlines()
    assert lines[0] == "| checkpoint | arith_mc (acc) | ifeval::tulu (prompt_level_loose_acc) |"
    assert lines[2:] == [f"| {first.label} | 0.500 | 0.250 |"]
    assert "| checkpoint | arith_mc (acc)" in report.summary_table(plan)
