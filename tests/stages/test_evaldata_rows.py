"""Evaluation datasets are checked when they enter: at plan time (reprolm/evalplan.py) and in
the evaldata job, naming the user's file, the line and the field (evals/rowschema.py)."""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

from reprolm.evalplan import evaldata_config
from reprolm.fingerprint import fingerprint
from reprolm.recipe import RecipeError, validate_stage_config
from tests.stages.micro import run_stage, schema_defaults

REPO = pathlib.Path(__file__).resolve().parents[2]
GOOD = {"question": "Two plus two?", "answer": "2 + 2 = 4\n#### 4"}
IFEVAL = {"key": 1, "prompt": "Say hi.", "instruction_id_list": ["punctuation:no_comma"],
          "kwargs": [{}]}  # fmt: skip
ARC = {"question": "Q?", "choices": {"text": ["a", "b"], "label": ["A", "B"]}, "answerKey": "A"}
ARC_NO_KEY = {k: v for k, v in ARC.items() if k != "answerKey"}
SPEC_OF = {
    "gsm8k": "gsm8k:cot::tulu",
    "ifeval": "ifeval::tulu",
    "arc_challenge": "arc_challenge:rc::olmes",
}


def _line(row: object) -> bytes:
    return json.dumps(row).encode() + b"\n"


def _plan(name: str, path: pathlib.Path) -> dict:
    base = schema_defaults("evaldata")
    evaluate = {"specs": [SPEC_OF[name]]}
    return evaldata_config({**base, "files": {**base["files"], name: str(path)}}, evaluate)


# case -> (dataset name, file bytes, the message expected after "<file>")
CASES = {
    "truncated_last_line": (
        "gsm8k", _line(GOOD) + b'{"question": "Three?", "ans',
        r":2: not valid JSON \(Unterminated string.*the last line is cut off",
    ),
    "invalid_utf8": ("gsm8k", _line(GOOD) + b'{"question": "caf\xe9", "answer": "#### 1"}\n',
                     r":2: not valid UTF-8 \(byte offset 78\)"),
    "missing_question": ("gsm8k", _line({"answer": "#### 3"}), r":1: gsm8k: no field 'question'"),
    "empty_file": ("gsm8k", b"", r": empty \(no JSON rows\)"),
    "blank_lines_only": ("gsm8k", b"\n \n", r": empty \(no JSON rows\)"),
    "no_gold_marker": ("gsm8k", _line({"question": "Q?", "answer": "it is 4"}),
                       r":1: gsm8k: 'answer' has no '#### <number>' line"),
    "gold_not_a_number": ("gsm8k", _line({"question": "Q?", "answer": "#### four"}),
                          r":1: gsm8k: 'answer' ends in '#### four', not a number"),
    "not_an_object": ("gsm8k", _line(GOOD) + b"[1, 2]\n", r":2: a JSON list, not an object"),
    "ifeval_kwargs_length": ("ifeval", _line({**IFEVAL, "kwargs": []}),
                             r":1: ifeval: 'kwargs' must be a list of 1 objects"),
    "ifeval_no_key": ("ifeval", _line({k: v for k, v in IFEVAL.items() if k != "key"}),
                      r":1: ifeval: no field\(s\) 'key'"),
    "arc_no_answer_key": ("arc_challenge", _line(ARC_NO_KEY),
                          r":1: multiple_choice: no field\(s\) 'answerKey'"),
    "arc_bad_answer_key": ("arc_challenge", _line({**ARC, "answerKey": "E"}),
                           r":1: multiple_choice: 'answerKey' 'E' is none of the labels"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_plan_refuses_a_bad_dataset_naming_file_and_line(tmp_path, case):
    name, data, expected = CASES[case]
    path = tmp_path / "mine.jsonl"
    path.write_bytes(data)
    with pytest.raises(RecipeError) as raised:
        _plan(name, path)
    message = str(raised.value)
    assert message.startswith(f"evaldata.files.{name} (read by {SPEC_OF[name]}):")
    assert any(line.strip().startswith(str(path)) for line in message.splitlines()[1:])
    assert re.search(re_escape_path(path) + expected, message), message


def re_escape_path(path: pathlib.Path) -> str:
    return re.escape(str(path))


@pytest.mark.parametrize("case", ["truncated_last_line", "invalid_utf8", "empty_file"])
def test_evaldata_job_names_the_users_file_not_its_copy(tmp_path, case):
    from reprolm.runner import JobError

    name, data, expected = CASES[case]
    path = tmp_path / "mine.jsonl"
    path.write_bytes(data)
    config = {**schema_defaults("evaldata"), "files": {name: str(path)}}
    config |= {"specs": {SPEC_OF[name]: name}, "digests": {}, "seed": 0, "threads": 1}
    with pytest.raises(JobError, match=re_escape_path(path) + expected) as raised:
        run_stage("evaldata", config, {}, tmp_path / "out")
    assert str(tmp_path / "out") not in str(raised.value)


def test_many_bad_rows_list_the_first_ten_and_count_the_rest(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_bytes(b"".join(_line({"answer": "#### 1"}) for _ in range(25)))
    with pytest.raises(RecipeError) as raised:
        _plan("gsm8k", path)
    lines = str(raised.value).splitlines()[1:]
    assert [line.strip().split(": ")[0] for line in lines[:10]] == [
        f"{path}:{n}" for n in range(1, 11)
    ]
    assert lines[10].strip() == f"{path}: ... and 15 more bad rows" and len(lines) == 11


def test_directory_datasets_need_their_parts(tmp_path):
    base = schema_defaults("evaldata")
    evaluate = {"specs": ["proc2pddl::with_text"]}
    (tmp_path / "empty").mkdir()
    half = tmp_path / "half"
    (half / "pddl_data").mkdir(parents=True)
    (half / "pddl_data" / "d.pddl").write_text("(define)")
    for folder, expected in ((tmp_path / "empty", "an empty directory"), (half, "no gold_plans")):
        with pytest.raises(RecipeError, match=expected):
            evaldata_config(
                {**base, "files": {**base["files"], "proc2pddl": str(folder)}}, evaluate
            )


def test_the_job_entry_point_prints_no_traceback(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_bytes(_line(GOOD) + b'{"question": "caf\xe9"}\n')
    config = {**schema_defaults("evaldata"), "files": {"gsm8k": str(path)}}
    config |= {"specs": {"gsm8k:cot::tulu": "gsm8k"}, "digests": {}, "seed": 0, "threads": 1}
    out = (
        tmp_path
        / f"evaldata-{fingerprint('evaldata', validate_stage_config('evaldata', config), {})}"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "stages.evaldata", "--config-json", json.dumps(config),
         "--output", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"{path}:2: not valid UTF-8 (byte offset 78)" in done.stderr
    assert not out.exists()


def test_kinds_agree_with_the_families_and_defaults_pass():
    from evals.families import kind_of
    from evals.registry import SPECS
    from evals.rowschema import check_dataset, kind_of_id
    from reprolm.evalplan import source_path

    assert {i: kind_of_id(i) for i in SPECS} == {i: kind_of(s) for i, s in SPECS.items()}
    readers: dict[str, list[str]] = {}
    for spec_id, spec in SPECS.items():
        readers.setdefault(spec.task, []).append(spec_id)
    for name, path in schema_defaults("evaldata")["files"].items():
        check_dataset(source_path(path), readers[name])  # raises on a bad default


FIXTURES = REPO / "tests" / "fixtures"
RELEASED = {  # dataset name -> (spec, a file in the released format)
    "delta_rot": ("delta_rot::classify", FIXTURES / "delta_rot" / "d-rules-of-thumb.tsv"),
    "complement_coercion": (
        "complement_coercion::surprisal",
        FIXTURES / "complement_coercion" / "coercion_frames.csv",
    ),
}


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_released_table_formats_enter_a_recipe_and_keep_their_suffix(tmp_path, name):
    """δ-RoT's release TSV and a coercion CSV pass the plan's check (read by the family's own
    loader) and evaldata copies them under their suffix, where the family finds them."""
    from stages.evaldata.stage import data_file

    spec, path = RELEASED[name]
    base = schema_defaults("evaldata")
    planned = evaldata_config({**base, "files": {name: str(path)}}, {"specs": [spec]})
    config = {**planned, "seed": 0, "threads": 1}
    run_stage("evaldata", config, {}, tmp_path / "out")
    copied = data_file(tmp_path / "out", name)
    assert copied.suffix == path.suffix and copied.read_bytes() == path.read_bytes()
    index = json.loads((tmp_path / "out" / "evaldata.json").read_text())
    assert index[name]["file"] == f"data/{name}{path.suffix}"


def test_a_table_file_for_a_jsonl_family_is_refused(tmp_path):
    path = tmp_path / "gsm8k.tsv"
    path.write_text("question\tanswer\nQ?\t#### 4\n")
    with pytest.raises(RecipeError, match=re.escape(str(path)) + r": a \.tsv file is read only"):
        _plan("gsm8k", path)


def test_a_bad_release_row_is_named_by_file_and_line(tmp_path):
    source = RELEASED["delta_rot"][1].read_text().splitlines()
    header = source[0].split("\t")
    row = source[1].split("\t")
    row[header.index("moral-variance")] = "maybe"
    path = tmp_path / "d-rules-of-thumb.tsv"
    path.write_text("\n".join([source[0], "\t".join(row)]) + "\n")
    base = schema_defaults("evaldata")
    with pytest.raises(RecipeError, match=re.escape(str(path)) + ":2: moral-variance") as raised:
        evaldata_config(
            {**base, "files": {"delta_rot": str(path)}}, {"specs": ["delta_rot::classify"]}
        )
    assert "moral-variance" in str(raised.value)
