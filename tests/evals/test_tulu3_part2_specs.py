"""The Tulu 3 MMLU / PopQA / TruthfulQA / AlpacaEval 2 / XSTest specs: listed, row-checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals.families import family_of
from evals.registry import get_spec
from evals.rowschema import DatasetError, check_dataset
from reprolm.cli import main

FIXTURES = Path(__file__).parents[1] / "fixtures"
DATA = {
    "mmlu:cot::tulu": FIXTURES / "mmlu" / "test_sample.jsonl",
    "popqa::tulu": FIXTURES / "popqa" / "test_sample.jsonl",
    "truthfulqa::tulu": FIXTURES / "truthfulqa" / "validation_sample.jsonl",
    "xstest::tulu": FIXTURES / "xstest" / "prompts.jsonl",
}
BAD = {
    "mmlu:cot::tulu": ({"answer": 4}, r":1: mmlu: 'answer' is 4"),
    "popqa::tulu": ({"possible_answers": "golfer"}, r":1: popqa: 'possible_answers' must be"),
    "truthfulqa::tulu": (
        {"mc2_targets": {"choices": ["a"], "labels": [1, 0]}},
        r":1: truthfulqa: 'mc2_targets'",
    ),
    "xstest::tulu": ({"label": "harmful"}, r":1: xstest: 'label' is 'harmful'"),
}


def test_listed_by_reprolm_eval_list(capsys):
    with pytest.raises(SystemExit) as done:
        main(["eval", "list"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for task_id in (*DATA, "alpaca_eval_v2::tulu"):
        assert task_id in out
    assert "popqa::tulu" in out and "15-shot" in out.split("popqa::tulu")[1].splitlines()[0]


@pytest.mark.parametrize("task_id", sorted(DATA))
def test_fixture_rows_pass_and_texts_read_them(task_id):
    assert check_dataset(DATA[task_id], [task_id]) >= 2
    assert all(family_of(get_spec(task_id)).texts(DATA[task_id]))


@pytest.mark.parametrize("task_id", sorted(BAD))
def test_bad_row_names_file_line_and_field(tmp_path, task_id):
    change, message = BAD[task_id]
    first = json.loads(DATA[task_id].open().readline())
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({**first, **change}) + "\n")
    with pytest.raises(DatasetError, match=message):
        check_dataset(path, [task_id])


def test_alpaca_eval_rows_need_an_instruction(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps({"output": "x"}) + "\n")
    with pytest.raises(DatasetError, match=r"a.jsonl:1: alpaca_eval_v2: no field 'instruction'"):
        check_dataset(path, ["alpaca_eval_v2::tulu"])


def test_cli_scores_saved_judgments(tmp_path, capsys):
    judgments = FIXTURES / "alpaca_eval" / "judgments.jsonl"
    with pytest.raises(SystemExit) as done:
        main(["eval", "score", "alpaca_eval_v2::tulu", "--predictions", str(judgments), "--out",
              str(tmp_path)])  # fmt: skip
    assert done.value.code == 0
    assert json.loads((tmp_path / "result.json").read_text())["metrics"]["win_rate"] == 50.0
