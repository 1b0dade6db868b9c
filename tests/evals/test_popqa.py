"""PopQA ``popqa::tulu``: 15-shot multi-turn chat prompt and OLMES' alias containment rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals import popqa
from evals.registry import get_spec
from evals.results import recompute

DATA = Path(__file__).parents[1] / "fixtures" / "popqa" / "test_sample.jsonl"
SPEC = get_spec("popqa::tulu")


def items() -> list[dict]:
    return [json.loads(line) for line in DATA.open()]


def test_prompt_is_15_multiturn_shots_without_the_querys_template():
    messages = popqa.chat_messages(items()[0], popqa.pool_rows(SPEC), SPEC.fewshot.n)
    assert len(messages) == 31  # 15 user/assistant pairs + the query
    users = [m["content"] for m in messages if m["role"] == "user"]
    query = "Q: What is George Rankin's occupation? A:"  # PopQA's first test row, template 22
    assert query not in users[:-1]  # the pool's George Rankin shot has the same template
    assert messages[:2] == [
        {"role": "user", "content": "Q: In what city was Albert Einstein born? A:"},
        {"role": "assistant", "content": "Ulm"},
    ]
    assert messages[-1] == {"role": "user", "content": query}
    other = popqa.chat_messages(items()[2], popqa.pool_rows(SPEC), SPEC.fewshot.n)
    assert other[0]["content"] == "Q: What is George Rankin's occupation? A:"
    assert other[-2] == {"role": "assistant", "content": "Elizabeth II"}  # Kenya's (422) dropped


@pytest.mark.parametrize(
    ("output", "hit"),
    [
        (" golfer", 1.0),
        (" He is a Professional golfer.", 1.0),  # "professional golfer".capitalize()
        (" Golfer", 1.0),  # "golfer".capitalize()
        (" GOLFER", 0.0),  # the output itself is not lower-cased
        (" a pro at golf", 0.0),
    ],
)
def test_alias_rule(output, hit):
    row = popqa.rescore({"question": "q", "response": output,
                         "aliases": ["golfer", "professional golfer"]})  # fmt: skip
    assert row["exact_match"] == hit


def test_score_file_by_hand(tmp_path):
    preds = tmp_path / "p.jsonl"
    outputs = [" Political leader", " Florence", " buenos aires"]  # hit (capitalized), miss, hit
    preds.write_text(
        "".join(json.dumps({"question": r["question"], "response": o}) + "\n"
                for r, o in zip(items(), outputs, strict=True))
    )  # fmt: skip
    result = popqa.score_file(SPEC, preds, DATA, tmp_path / "out")
    assert result["metrics"]["exact_match"] == pytest.approx(2 / 3)
    assert recompute(tmp_path / "out")["problems"] == []
    preds.write_text(json.dumps({"question": "unknown", "response": "x"}) + "\n")
    with pytest.raises(ValueError, match=r"p.jsonl:1: no 'possible_answers'"):
        popqa.score_file(SPEC, preds, DATA, None)


def test_bad_possible_answers_named():
    with pytest.raises(ValueError, match=r"here:1: 'possible_answers' is 'golfer'"):
        popqa.check_row({**items()[0], "possible_answers": "golfer"}, "here:1")
