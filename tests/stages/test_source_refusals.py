"""The source job checks rows while it counts them (stages/source/survey.py): a source that
can deliver no training row, or a file without its kind's column, is refused naming the user's
file; malformed lines are listed in source.json with their file:line and stay curate's rejects."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

from reprolm.fingerprint import fingerprint
from reprolm.recipe import validate_stage_config
from reprolm.runner import JobError
from stages.common.job import JobContext
from stages.source.stage import run

REPO = pathlib.Path(__file__).resolve().parents[2]


def _config(path: pathlib.Path, kind: str = "pretrain", fmt: str = "jsonl", **extra) -> dict:
    return {"kind": kind, "name": "mine", "path": str(path), "format": fmt, **extra}


def _run(tmp_path: pathlib.Path, config: dict) -> dict:
    out = tmp_path / f"out{len(list(tmp_path.glob('out*')))}"
    out.mkdir()
    run(config, {}, out, JobContext())
    return json.loads((out / "source.json").read_text("utf-8"))


def _lines(*rows: object) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


@pytest.mark.parametrize(
    ("name", "data", "kind", "expected"),
    [
        ("empty.jsonl", b"", "pretrain", ": empty file \\(no rows\\)"),
        ("keys.jsonl", _lines({"body": "a"}, {"b": 1}), "pretrain", ":1: no text field 'text'"),
        ("utf8.jsonl", b'{"text": "caf\xe9"}\n', "pretrain", ":1: invalid UTF-8 at byte offset 13"),
        ("cut.jsonl", b'{"text": "a sentence', "pretrain", ":1: malformed JSON: Unterminated"),
        ("sft.jsonl", _lines({"messages": [{"role": "user", "content": "hi"}]}), "sft",
         ":1: 'messages' has no assistant turn"),
        ("dpo.jsonl", _lines({"chosen": [{"role": "assistant", "content": "a"}]}), "preference",
         ":1: no field 'rejected'"),
        ("rlvr.jsonl", _lines({"messages": [{"role": "user", "content": "2+2?"}],
                               "dataset": "gsm8k"}), "rlvr", ":1: no field 'ground_truth'"),
    ],
)  # fmt: skip
def test_a_source_without_a_usable_row_is_refused(tmp_path, name, data, kind, expected):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(JobError, match=f"sources.{kind} \\(mine\\): no row becomes") as raised:
        _run(tmp_path, _config(path, kind))
    import re

    assert re.search(re.escape(str(path.resolve())) + expected, str(raised.value)), raised.value


def test_columnar_files_need_the_kinds_column(tmp_path):
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"body": ["one", "two"]})
    pq.write_table(table, tmp_path / "a.parquet")
    with pytest.raises(JobError, match=r"a.parquet: no column 'text' \(columns: body\)"):
        _run(tmp_path, _config(tmp_path / "a.parquet", fmt="parquet"))
    datasets.Dataset.from_dict({"prompt": ["p"]}).save_to_disk(str(tmp_path / "hf"))
    with pytest.raises(JobError, match=r"hf: no column 'chosen', 'rejected' \(columns: prompt\)"):
        _run(tmp_path, _config(tmp_path / "hf", "preference", "hf_disk"))
    record = _run(tmp_path, _config(tmp_path / "a.parquet", fmt="parquet", text_key="body"))
    assert record["rows"] == 2 and record["malformed"] == 0


def test_malformed_lines_are_listed_with_the_users_file_and_line(tmp_path):
    path = tmp_path / "web.jsonl"
    good = _lines(*({"text": f"doc {i}"} for i in range(3)))
    path.write_bytes(good + b'{"text": "caf\xe9"}\n' + b"[1]\n" + good + b'{"text": "cut')
    record = _run(tmp_path, _config(path))
    (entry,) = record["files"]
    shown = str(path.resolve())
    assert entry["rows"] == 9 and entry["malformed"] == 3 and record["malformed"] == 3
    assert [line.split(": ", 1)[0] for line in entry["first_malformed"]] == [
        f"{shown}:4",
        f"{shown}:5",
        f"{shown}:9",
    ]
    assert "invalid UTF-8 at byte offset" in entry["first_malformed"][0]


def test_the_source_entry_point_prints_no_traceback(tmp_path):
    path = tmp_path / "keys.jsonl"
    path.write_bytes(_lines({"body": "a"}))
    config = validate_stage_config("source", _config(path) | {"seed": 0, "threads": 1})
    out = tmp_path / f"source-{fingerprint('source', config, {})}"
    done = subprocess.run(
        [sys.executable, "-m", "stages.source", "--config-json", json.dumps(config),
         "--output", str(out)],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert f"{path.resolve()}:1: no text field 'text'" in done.stderr and not out.exists()
