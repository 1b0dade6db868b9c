"""DROP ``drop::tulu``: the official F1 / EM on hand-computed cases, the 3-shot prompt of a real
item, scoring from files and recompute.

Hand computation of each F1 case: normalize (lower case, punctuation off non-numbers, numbers
as floats, articles off, split on space and hyphen), bag the tokens, token F1 per aligned span
pair (0 where the gold span has numbers and none is shared), averaged over the larger side,
rounded to 2 decimals; the maximum over gold answers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals import drop, rowschema, sources
from evals.registry import get_spec
from tests.evals.cli import run_cli

FIXTURE = Path(__file__).parents[1] / "fixtures" / "drop" / "sample.jsonl"


@pytest.mark.parametrize(
    ("prediction", "golds", "em", "f1"),
    [
        ("2", [("2",)], 1.0, 1.0),
        ("two", [("2",)], 0.0, 0.0),  # the gold's number is not in the prediction
        ("the Nate Kaeding.", [("Nate Kaeding",)], 1.0, 1.0),  # article and "." dropped
        ("Kaeding", [("Nate Kaeding",)], 0.0, 0.67),  # P 1, R 1/2: 2/3
        ("1344", [("June 1344",)], 0.0, 0.67),
        ("2 field goals", [("2",)], 0.0, 0.5),  # P 1/3, R 1: 1/2
        ("Jason Hanson and Connor Barth", [("Jason Hanson", "Connor Barth")], 0.0, 0.29),
        # one predicted span aligns with one gold span: F1 2*(2/5)*1/(7/5) = 4/7, over 2 spans
        ("two", [("2",), ("two",)], 1.0, 1.0),  # the best gold answer counts
        ("158,203", [("158203",)], 1.0, 1.0),  # comma dropped, 158203.0 both
        ("28-yard", [("28 yard",)], 1.0, 1.0),  # hyphen splits tokens
        ("2.0", [("2",)], 1.0, 1.0),  # numbers compared as floats
        ("anything", [("",)], 0.0, 0.0),  # an empty gold is skipped
    ],
)
def test_official_metric_by_hand(prediction, golds, em, f1):
    assert drop.drop_metrics(prediction, golds) == {"exact_match": em, "f1": f1}


def test_multi_span_alignment_is_one_to_one():
    # two predicted spans, two gold spans: aligned crosswise, each exact
    assert drop.get_metrics(["Connor Barth", "Jason Hanson"], ("Jason Hanson", "Connor Barth")) == (
        1.0,
        1.0,
    )
    # two predicted spans, one gold: the better one aligns, averaged over 2
    assert drop.get_metrics(["Jason Hanson", "x"], ("Jason Hanson",)) == (0.0, 0.5)


def test_gold_answers_from_the_released_schema():
    empty = {"day": "", "month": "", "year": ""}
    june = {"day": "", "month": "June", "year": "1344"}
    row = {
        "answer": {"number": "", "date": june, "spans": []},
        "validated_answers": {"number": ["", "3"], "date": [empty, empty],
                              "spans": [["June 1344"], []]},
    }  # fmt: skip
    assert drop.gold_answers(row) == [("June 1344",), ("3",)]  # deduplicated, in order


def test_real_item_renders_to_the_reference_prompt():
    spec = get_spec("drop::tulu")
    item = sources.read_rows(FIXTURE)[0]
    shots = sources.read_jsonl(sources.bundled(spec.fewshot.file))[: spec.fewshot.n]
    text = drop.prompt(item, shots)
    assert text.startswith("Passage: To start the season, the Lions traveled south to Tampa")
    assert (
        "since 2007\nQuestion: How many field goals did the Lions score?\nAnswer: 2\n\n"
        "Passage: Coming off their road win over the Redskins" in text
    )
    assert (
        "\nQuestion: which player scored the longest field goal?\nAnswer: Nate Kaeding\n\n" in text
    )
    assert (
        "portogalos" not in text and "Portogalos bay?\nAnswer: June 1344\n\nPassage: As of " in text
    )
    assert text.endswith(
        '8.1% "American" and 6.0% Polish ancestry.\nQuestion: How many more people were there '
        "than families?\nAnswer:"
    )
    assert text.count("Passage: ") == 4 and text.count("\n\n") == 3


def test_score_from_files_and_recompute(tmp_path, capsys):
    item = sources.read_rows(FIXTURE)[0]
    own = {"number": "", "date": {"day": "", "month": "", "year": ""}, "spans": ["Nate Kaeding"]}
    rows = [
        {"query_id": item["query_id"], "response": " 158203\n"},  # gold from --data: F1 1
        {"query_id": "q2", "response": "Kaeding", "answer": own},  # F1 0.67, EM 0
        {"query_id": "q3", "response": "Jason Hanson", "answer": own},  # F1 0, EM 0
    ]
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "result"
    code, text = run_cli(["eval", "score", "drop::tulu", "--predictions", str(preds), "--data",
                          str(FIXTURE), "--out", str(out), "--json"], capsys)  # fmt: skip
    assert code == 0
    result = json.loads(text)
    assert result["primary_metric"] == "f1"
    assert result["metrics"]["f1"] == pytest.approx((1 + 0.67 + 0) / 3)
    assert result["metrics"]["exact_match"] == pytest.approx(1 / 3)
    code, text = run_cli(["eval", "recompute", str(out)], capsys)
    assert code == 0 and "reproduced exactly" in text


def test_row_schema_and_texts(tmp_path):
    assert rowschema.check_dataset(FIXTURE, ["drop::tulu"]) == 1
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"passage": "p", "question": "q", "answer": "2"}) + "\n")
    with pytest.raises(rowschema.DatasetError, match=r"bad\.jsonl:1: drop: 'answer' must be"):
        rowschema.check_dataset(bad, ["drop::tulu"])
    assert drop.texts(FIXTURE)[0].endswith("How many more people were there than families?")
