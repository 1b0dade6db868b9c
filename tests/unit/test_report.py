"""The end-of-run summary: one primary column per world task and per spec."""

from __future__ import annotations

from pathlib import Path

from reprolm import report
from reprolm.plan import load_plan
from tests.support import MICRO, ROOT

METRICS = {
    "arith_mc/acc": 0.5,
    "arith_mc/acc_norm": 0.4,  # not a primary
    "specs/ifeval__tulu/prompt_level_loose_acc": 0.25,
    "specs/ifeval__tulu/inst_level_strict_acc": 0.1,
    "specs/ifeval__tulu/primary": 0.25,
    "specs/gsm8k_cot__tulu/exact_match": 0.0,  # a spec's metric, not its summary column
    "specs/gsm8k_cot__tulu/primary": 0.0,
}


def test_eval_rows_take_world_primaries_and_each_specs_primary(monkeypatch):
    plan = load_plan(ROOT / MICRO)
    first = plan.by_stage("evaluate")[0]

    def manifest(path: Path) -> dict:
        if Path(path) != Path(first.artifact_dir):
            raise report.ManifestError(f"{path}: not run")
        return {"metrics": METRICS}

    monkeypatch.setattr(report, "read_manifest", manifest)
    columns, rows = report.eval_rows(plan)
    assert columns == [
        "arith_mc/acc",
        "specs/gsm8k_cot__tulu/primary",
        "specs/ifeval__tulu/primary",
    ]
    assert rows == [(first.label, {c: METRICS[c] for c in columns})]
