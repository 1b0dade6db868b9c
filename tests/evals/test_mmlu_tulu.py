"""MMLU ``mmlu:cot::tulu``: OLMES' 0-shot CoT "summarize" prompt, answer extraction, macro mean."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals import mmlu_tulu
from evals.registry import get_spec
from evals.results import recompute

DATA = Path(__file__).parents[1] / "fixtures" / "mmlu" / "test_sample.jsonl"


def items() -> list[dict]:
    return [json.loads(line) for line in DATA.open()]


def test_prompt_is_olmes_summarize_user_turn():
    assert mmlu_tulu.user_turn(items()[0]) == (
        "The following are multiple choice questions about abstract algebra. Summarize your "
        "reasoning concisely, then conclude with 'Therefore, the answer is: X' where X is one "
        "of A, B, C, or D.\n\n"
        "Question: Find the degree for the given field extension Q(sqrt(2), sqrt(3), sqrt(18)) "
        "over Q.\n A. 0\n B. 4\n C. 2\n D. 6\n"
    )
    assert mmlu_tulu.user_turn(items()[2]) == (
        "The following are multiple choice questions about anatomy. Summarize your reasoning "
        "concisely, then conclude with 'Therefore, the answer is: X' where X is one of A, B, C, "
        "or D.\n\n"
        'Question: A "dished face" profile is often associated with\n'
        " A. a protruding mandible due to reactivation of the condylar cartilage by acromegaly.\n"
        " B. a recessive maxilla due to failure of elongation of the cranial base.\n"
        " C. an enlarged frontal bone due to hydrocephaly.\n"
        " D. defective development of the maxillary air sinus.\n"
    )


@pytest.mark.parametrize(
    ("response", "letter"),
    [
        ("Reasoning... Therefore, the answer is: B", "B"),
        ("therefore the answer is (c).", "C"),
        ("The answer is D, not A.", "D"),
        ("I think B is correct.", "B"),
        ("Options (A) and (C) fail; so (C)", "A"),  # first parenthesised letter
        ("Maybe A or maybe D\nno idea", "D"),  # last stand-alone letter of the first line
        ("no letter here", ""),
    ],
)
def test_extraction_cascade(response, letter):
    assert mmlu_tulu.extract(response) == letter


def test_macro_and_micro_by_hand(tmp_path):
    responses = ["Therefore, the answer is: B", "Therefore, the answer is: A", "the answer is D"]
    preds = tmp_path / "p.jsonl"
    preds.write_text(
        "".join(
            json.dumps({**r, "response": t}) + "\n" for r, t in zip(items(), responses, strict=True)
        )
    )
    result = mmlu_tulu.score_file(get_spec("mmlu:cot::tulu"), preds, None, tmp_path / "out")
    m = result["metrics"]
    # gold B, A, B: abstract_algebra 1/1, anatomy 1/2 -> macro 0.75, micro 2/3
    assert m["exact_match_macro"] == pytest.approx(0.75)
    assert m["exact_match_micro"] == pytest.approx(2 / 3)
    assert m["exact_match:anatomy"] == 0.5 and m["subjects"] == 2
    assert result["primary_metric"] == "exact_match_macro"
    assert recompute(tmp_path / "out")["problems"] == []


def test_bad_answer_names_line(tmp_path):
    preds = tmp_path / "p.jsonl"
    preds.write_text(json.dumps({**items()[0], "answer": 7, "response": "B"}) + "\n")
    with pytest.raises(ValueError, match=r"p.jsonl:1: 'answer' is 7"):
        mmlu_tulu.score_file(get_spec("mmlu:cot::tulu"), preds, None, None)
