"""rc/mc prompt rendering and the normalizations, on the real OLMES few-shot items."""

from __future__ import annotations

import pytest

from evals import formats, sources
from evals.metrics import mc_metrics, predicted
from evals.report import compare_formats, markdown
from tests.evals.conftest import ARC_EASY


def items():
    return [formats.arc_item(r) for r in sources.read_jsonl(ARC_EASY)]


def test_rc_and_mc_prompts():
    item = items()[0]
    assert formats.query(item, "rc") == f"Question: {item.question}\nAnswer:"
    assert formats.continuations(item, "rc") == [
        " carbon dioxide",
        " food",
        " protection",
        " water",
    ]
    assert formats.query(item, "mc") == (
        f"Question: {item.question}\n A. carbon dioxide\n B. food\n C. protection\n D. water\n"
        "Answer:"
    )
    assert formats.continuations(item, "mc") == [" A", " B", " C", " D"]
    assert item.gold == 1


def test_numeric_labels_map_to_an_index():
    item = items()[3]  # answerKey "3" among labels 1-4
    assert item.gold == 2
    assert formats.continuations(item, "mc")[item.gold] == " C"


def test_context_puts_shots_with_gold_answers_first():
    shots, item = items()[:2], items()[2]
    text = formats.context(item, shots, "rc")
    assert text.startswith(f"Question: {shots[0].question}\nAnswer: food\n\n")
    assert text.endswith(f"\n\nQuestion: {item.question}\nAnswer:")
    assert text.count("Question:") == 3


def test_bad_record_names_its_place():
    with pytest.raises(ValueError, match=r"data\.jsonl:4"):
        formats.arc_item(
            {"question": "q", "choices": {"text": ["a"], "label": ["A"]}, "answerKey": "B"},
            "data.jsonl:4",
        )


def choice(loglik, n_tokens, n_chars, uncond):
    return {"loglik": loglik, "n_tokens": n_tokens, "n_chars": n_chars, "uncond_loglik": uncond}


def test_each_normalization_picks_its_own_choice():
    # raw prefers 0 (short), per_token prefers 1, per_char prefers 2, uncond prefers 3
    row = {
        "gold": 2,
        "choices": [
            choice(-4.0, 1, 4, -3.0),
            choice(-6.0, 6, 40, -4.0),
            choice(-9.0, 3, 100, -7.0),
            choice(-10.0, 3, 20, -20.0),
        ],
    }
    assert [predicted(row, n) for n in ("raw", "per_token", "per_char", "uncond")] == [0, 1, 2, 3]
    metrics = mc_metrics([row], ("raw", "per_token", "per_char", "uncond"))
    assert metrics == {"acc_raw": 0.0, "acc_per_token": 0.0, "acc_per_char": 1.0, "acc_uncond": 0.0}


def test_ties_pick_the_first_choice():
    row = {"gold": 0, "choices": [choice(-1.0, 1, 1, 0.0), choice(-1.0, 1, 1, 0.0)]}
    assert mc_metrics([row], ["raw"]) == {"acc_raw": 1.0}


def test_report_shows_both_formats_and_the_better():
    results = [
        {
            "task_id": "arc_easy:rc::olmes",
            "primary": 0.5,
            "primary_metric": "acc_per_char",
            "spec_hash": "a" * 64,
        },
        {
            "task_id": "arc_easy:mc::olmes",
            "primary": 0.75,
            "primary_metric": "acc_raw",
            "spec_hash": "b" * 64,
        },
    ]
    [row] = compare_formats(results)
    assert (row["rc"], row["mc"], row["best"], row["best_format"]) == (0.5, 0.75, 0.75, "mc")
    assert "0.7500 (mc)" in markdown([row])
