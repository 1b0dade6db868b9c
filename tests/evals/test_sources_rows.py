"""Dataset rows in every released form: JSONL, Parquet, HF save_to_disk (Dataset, DatasetDict)."""

from __future__ import annotations

import json

import pytest

from evals import sources

ROWS = [{"question": "q1", "label": 0}, {"question": "q2", "label": 1}]


def test_jsonl_and_parquet_give_the_same_rows(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    parquet = tmp_path / "rows.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), parquet)
    assert sources.read_rows(jsonl) == ROWS
    assert sources.read_rows(parquet) == ROWS


def test_save_to_disk_dataset_and_dataset_dict(tmp_path):
    from datasets import Dataset, DatasetDict

    Dataset.from_list(ROWS).save_to_disk(str(tmp_path / "one"))
    DatasetDict(
        {"validation": Dataset.from_list(ROWS[:1]), "test": Dataset.from_list(ROWS)}
    ).save_to_disk(str(tmp_path / "dict"))
    assert sources.read_rows(tmp_path / "one") == ROWS
    assert sources.read_rows(tmp_path / "dict", split="validation") == ROWS[:1]
    with pytest.raises(ValueError, match=r"splits \['test', 'validation'\]; split 'train'"):
        sources.read_rows(tmp_path / "dict", split="train")
    # A folder's digest covers its files: changing one byte changes it.
    before = sources.digest(tmp_path / "one")
    (tmp_path / "one" / "extra.txt").write_text("x", encoding="utf-8")
    assert sources.digest(tmp_path / "one") != before


def test_a_folder_that_is_no_dataset_is_refused_by_name(tmp_path):
    (tmp_path / "notes.txt").write_text("x", encoding="utf-8")
    with pytest.raises(ValueError, match="save_to_disk folder"):
        sources.read_rows(tmp_path)
