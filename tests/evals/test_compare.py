"""Comparison tables from hand-made results: rows, spec-hash guard, missing cells, CSV, plot.

Results are written with the real writers (``results.write_result``, the evaluate stage's
``results.json`` shape), so the loaders read what evaluations leave on disk.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from evals import collect, compare
from evals.plot import write_plot
from evals.results import write_result
from reprolm.cli import main

ARC = "arc_easy:rc::olmes"
GSM = "gsm8k:cot::tulu"
H1, H2 = "1" * 64, "2" * 64


def spec_result(out: pathlib.Path, task: str, primary: float, spec_hash: str, **extra) -> None:
    """A spec result directory (``result.json`` + ``predictions.jsonl``)."""
    metric = "acc_per_char" if task == ARC else "exact_match"
    result = {
        "task_id": task,
        "kind": "multiple_choice" if task == ARC else "gsm8k",
        "spec_hash": spec_hash,
        "spec": {},
        "metrics": {metric: primary, "other": 0.5},
        "primary_metric": metric,
        "primary": primary,
        "instances": 20,
        "model": {"digest": "abcdef0123456789", "name": "model"},
        **extra,
    }
    write_result(out, result, [{"doc_id": 0}])


def evaluate_artifact(out: pathlib.Path, checkpoint: str, acc: float, scores=None) -> None:
    """An evaluate artifact: world ``results.json`` (+ samples) and spec results."""
    out.mkdir(parents=True)
    doc = {
        "checkpoint": checkpoint,
        "tasks": {"facts_mc": {"acc": acc, "acc_norm": 0.0}, "arith_gen": {"exact_match": 0.5}},
        "instances": {"facts_mc": 4, "arith_gen": 2},
        "primary_metrics": {"facts_mc": "acc", "arith_gen": "exact_match"},
        "decontamination": {"facts_mc": {"contamination": 0.25, "flagged": 1, "instances": 4}},
    }
    (out / "results.json").write_text(json.dumps(doc), encoding="utf-8")
    if scores is not None:
        (out / "samples").mkdir()
        lines = [json.dumps({"doc_id": i, "scores": {"acc": s}}) for i, s in enumerate(scores)]
        (out / "samples" / "facts_mc.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def two_checkpoints(tmp_path) -> dict[str, pathlib.Path]:
    """pretrain: ARC under spec H1; sft: ARC under H2 (a changed spec) and GSM8K (new task)."""
    pre, sft = tmp_path / "pre", tmp_path / "sft"
    evaluate_artifact(pre, "pretrain", 0.25, scores=[0, 0, 1, 0])
    evaluate_artifact(sft, "sft", 0.75)
    spec_result(pre / "specs" / ARC, ARC, 0.3, H1, decontamination=0.05)
    spec_result(sft / "specs" / ARC, ARC, 0.4, H2, decontamination=0.05)
    spec_result(sft / "specs" / "gsm8k_cot__tulu", GSM, 0.125, H1, primary_stderr=0.0625)
    # The evaluate stage also lists spec tasks in results.json (typed "spec"): the spec result
    # (with its hash) is the one used, never a second, hash-less copy.
    doc = json.loads((sft / "results.json").read_text(encoding="utf-8"))
    doc["tasks"][GSM] = {"exact_match": 0.9}
    doc["task_types"] = {GSM: "spec"}
    (sft / "results.json").write_text(json.dumps(doc), encoding="utf-8")
    return {"pretrain": pre, "sft": sft}


def table_of(paths: dict[str, pathlib.Path]) -> dict:
    entries = [e for label, p in paths.items() for e in collect.evaluate_entries(p, label)]
    return compare.build(entries, list(paths))


def test_rows_spec_mismatch_and_missing_cells(two_checkpoints):
    table = table_of(two_checkpoints)
    lines = compare.markdown(table).splitlines()
    assert lines[0] == "| task | metric | spec | n | decontamination | pretrain | sft |"
    assert lines[2:6] == [
        # sft's ARC number is under another spec: withheld from the row, given in a note
        "| arc_easy:rc::olmes | acc_per_char | `11111111` | 20 | 5.0% | 0.300 | ≠ spec |",
        "| arith_gen | exact_match | – | 2 | – | 0.500 | 0.500 |",
        # stderr of the pretrain cell from its per-instance scores (0,0,1,0): 0.5/sqrt(4)
        "| facts_mc | acc | – | 4 | 25.0% (1/4) | 0.250 ± 0.250 | 0.750 |",
        "| gsm8k:cot::tulu | exact_match | `11111111` | 20 | – | – | 0.125 ± 0.062 |",
    ]
    assert "0.400" not in "\n".join(lines[:6])
    assert lines[-1] == (
        "* sft, arc_easy:rc::olmes (acc_per_char): 0.400 under spec `22222222`, not comparable "
        "to the row's spec `11111111`; not shown in the row"
    )
    arc = table["rows"][0]["cells"]
    assert arc["sft"]["status"] == compare.MISMATCH and arc["sft"]["spec_hash"] == H2
    assert table["rows"][3]["cells"]["pretrain"] == {"status": compare.MISSING}


def test_cells_that_differ_in_n_or_decontamination_say_so():
    E = compare.Entry
    table = compare.build(
        [E("a", "t::x", "m", 0.5, n=10, spec_hash=H1), E("b", "t::x", "m", 0.25, n=8, spec_hash=H1)]
    )
    assert compare.markdown(table).splitlines()[2] == (
        "| t::x | m | `11111111` | per cell | – | 0.500 (n=10) | 0.250 (n=8) |"
    )


def test_csv_bytes(two_checkpoints):
    text = compare.csv_text(table_of(two_checkpoints))
    assert text.splitlines()[0] == ",".join(compare.CSV_FIELDS)
    assert "\r" not in text and text.endswith("\n")
    rows = text.splitlines()[1:]
    assert len(rows) == 4 * 2  # every row x column, missing ones included
    assert rows[0] == f"{ARC},acc_per_char,{H1},pretrain,ok,0.3,,20,{H1},0.05,,"
    assert rows[1] == f"{ARC},acc_per_char,{H1},sft,spec_mismatch,0.4,,20,{H2},0.05,,"
    assert rows[5] == "facts_mc,acc,,sft,ok,0.75,,4,,0.25,1,4"
    assert rows[6] == f"{GSM},exact_match,{H1},pretrain,missing,,,,,,,"
    assert rows[4].split(",")[6] == repr(0.5 / 2)  # exact repr, not rounded


def test_duplicate_and_bad_inputs_are_named(tmp_path, two_checkpoints):
    e = compare.Entry("a", "t::x", "m", 0.5)
    with pytest.raises(ValueError, match="column 'a' has two results for t::x"):
        compare.build([e, e])
    with pytest.raises(ValueError, match="'decontamination' must be a number"):
        compare.decontamination("5%", "r.json")
    with pytest.raises(ValueError, match="not a spec result"):
        collect.load_inputs([tmp_path / "nothing"])
    other = tmp_path / "other_recipe_sft"
    shutil.copytree(two_checkpoints["sft"], other)
    with pytest.raises(ValueError, match="both give column 'sft'"):  # two recipes' sft
        collect.load_inputs([two_checkpoints["sft"], other])
    shutil.rmtree(other / "specs" / "gsm8k_cot__tulu")
    with pytest.raises(ValueError, match=r"spec tasks \['gsm8k:cot::tulu'\] have no specs/\*/"):
        collect.evaluate_entries(other, "x")
    with pytest.raises(ValueError, match="--label given 1 times for 2 inputs"):
        collect.load_inputs(list(two_checkpoints.values()), ["x"])


PLOT_SCRIPT = """
import json, pathlib, sys
from evals.plot import write_plot
write_plot(json.loads(pathlib.Path(sys.argv[1]).read_text()), pathlib.Path(sys.argv[2]))
"""


def test_plot_bytes_stable_across_runs(tmp_path, two_checkpoints):
    table = table_of(two_checkpoints)
    one = write_plot(table, tmp_path / "one.png").read_bytes()
    assert one == write_plot(table, tmp_path / "two.png").read_bytes()
    assert one.startswith(b"\x89PNG") and b"Software" not in one and b"matplotlib" not in one
    # A fresh interpreter, another hash seed and a hostile matplotlibrc: the same bytes.
    (tmp_path / "table.json").write_text(json.dumps(table), encoding="utf-8")
    (tmp_path / "rc").mkdir()
    (tmp_path / "rc" / "matplotlibrc").write_text("axes.facecolor: red\nfont.size: 20\n")
    env = {**os.environ, "PYTHONHASHSEED": "123", "MATPLOTLIBRC": str(tmp_path / "rc")}
    cmd = [sys.executable, "-c", PLOT_SCRIPT, str(tmp_path / "table.json"), str(tmp_path / "3")]
    subprocess.run(cmd, check=True, env=env, cwd=pathlib.Path(__file__).parents[2])
    assert (tmp_path / "3").read_bytes() == one
    # And the plot shows the data: another value gives other bytes.
    table["rows"][2]["cells"]["sft"]["value"] = 0.1
    assert write_plot(table, tmp_path / "four.png").read_bytes() != one


def test_cli_compare_spec_results_share_a_model_column(tmp_path, two_checkpoints, capsys):
    """Bare result dirs of one model form one column; --label names columns."""
    a, b = tmp_path / "run" / "arc", tmp_path / "run" / "gsm"
    spec_result(a, ARC, 0.3, H1)
    spec_result(b, GSM, 0.2, H1)
    with pytest.raises(SystemExit) as done:
        main(
            [
                "eval",
                "compare",
                str(a),
                str(b),
                str(two_checkpoints["sft"] / "specs" / "gsm8k_cot__tulu"),
            ]
        )
    assert done.value.code == 2  # same default label (model name + digest): one column, 2 GSM8K
    assert "'model@abcdef01' has two results for gsm8k:cot::tulu" in capsys.readouterr().err
    with pytest.raises(SystemExit) as done:
        argv = ["eval", "compare", str(a), str(b), "--json", "--label", "m1", "--label", "m1"]
        main(argv)
    assert done.value.code == 0
    table = json.loads(capsys.readouterr().out)
    assert table["columns"] == ["m1"] and len(table["rows"]) == 2
