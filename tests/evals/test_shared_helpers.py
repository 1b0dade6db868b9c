"""The small helpers the families share: chat layout, row checks, gold sources, group means."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals import formats, generative, results
from evals.families import field_texts
from evals.metrics import group_means
from evals.rowschema import require


def test_multiturn_alternates_shots_then_the_query():
    messages = formats.multiturn([("q1", "a1"), ("q2", "a2")], "q3")
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    assert [m["content"] for m in messages] == ["q1", "a1", "q2", "a2", "q3"]
    assert formats.multiturn([], "only") == [{"role": "user", "content": "only"}]


def test_head_query_rc_and_mc():
    item = formats.Item("1", "Is it?", ("yes", "no"), 0)
    assert formats.head_query("Head", item, "rc") == "Head\nAnswer:"
    assert formats.head_query("Head", item, "mc") == "Head\n A. yes\n B. no\nAnswer:"
    assert formats.query(item, "rc") == "Question: Is it?\nAnswer:"
    with pytest.raises(ValueError, match="unknown multiple-choice format 'xx'"):
        formats.head_query("Head", item, "xx")


def test_check_each_names_file_and_line():
    seen = []

    def check_row(row: dict, where: str) -> None:
        seen.append(where)
        if "q" not in row:
            raise ValueError(f"{where}: no q")

    check = generative.check_each(check_row)
    check(Path("d.jsonl"), [{"q": 1}, {"q": 2}])
    assert seen == ["d.jsonl:1", "d.jsonl:2"]
    with pytest.raises(ValueError, match=r"^d\.jsonl:2: no q$"):
        check(Path("d.jsonl"), [{"q": 1}, {}])


def test_require_lists_the_missing_keys():
    require({"a": 1, "b": 2}, ("a", "b"), "f:1", "row")
    with pytest.raises(ValueError, match=r"^f:1: X row lacks b, c \(X rows: a, b, c\)$"):
        require({"a": 1}, ("a", "b", "c"), "f:1", "X row", "X rows: a, b, c")
    with pytest.raises(ValueError, match=r"^f:2: prediction lacks a$"):
        require({}, ("a",), "f:2", "prediction")


def test_group_means_in_sorted_group_order():
    means = group_means([("b", 1.0), ("a", 0.0), ("b", 0.0), ("a", 1.0), ("a", 1.0)])
    assert list(means) == ["a", "b"]
    assert means == {"a": pytest.approx(2 / 3), "b": 0.5}
    assert group_means([]) == {}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_with_sources_prefers_the_data_row_and_refuses_by_line(tmp_path):
    data = [{"id": "x", "gold": "from data"}]
    preds = write_jsonl(
        tmp_path / "p.jsonl", [{"id": "x", "r": 1}, {"id": "y", "r": 2, "gold": "own"}]
    )
    pairs = list(results.with_sources(preds, data, "id", ("r",), lambda s: "gold" in s, "'gold'"))
    assert [source["gold"] for _, source in pairs] == ["from data", "own"]
    assert [pred["r"] for pred, _ in pairs] == [1, 2]
    bad = write_jsonl(tmp_path / "b.jsonl", [{"id": "x", "r": 1}, {"id": "z", "r": 3}])
    with pytest.raises(ValueError, match=r"b\.jsonl:2: id not in the dataset .* no 'gold' of"):
        list(results.with_sources(bad, data, "id", ("r",), lambda s: "gold" in s, "'gold'"))
    lacking = write_jsonl(tmp_path / "l.jsonl", [{"id": "x"}])
    with pytest.raises(ValueError, match=r"l\.jsonl:1: needs 'r' and 's'$"):
        list(results.with_sources(lacking, data, "id", ("r", "s"), bool, "'gold'"))


def test_field_texts_reads_one_field_per_row(tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", [{"question": "a?", "x": 1}, {"question": "b?"}])
    assert field_texts("question")(data) == ["a?", "b?"]
    with pytest.raises(KeyError):
        field_texts("x")(data)
