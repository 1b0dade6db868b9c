"""GSM8K: gold parsing and answer extraction on the real test items, scoring from files."""

from __future__ import annotations

import json

import pytest

from evals import gsm8k, sources, verifiers
from reprolm.cli import main
from tests.evals.cli import run_cli
from tests.evals.conftest import GSM8K_SHOTS, GSM8K_TEST

TEST_ROWS = sources.read_jsonl(GSM8K_TEST)


def score_argv(predictions) -> list[str]:
    """``reprolm eval score gsm8k:cot::tulu`` on a predictions file against the test sample."""
    return ["eval", "score", "gsm8k:cot::tulu", "--predictions", str(predictions),
            "--data", str(GSM8K_TEST)]  # fmt: skip


def test_extraction_on_gold_solutions_is_100_percent():
    assert len(TEST_ROWS) >= 100
    hits = [gsm8k.extract_answer(r["answer"]) == gsm8k.gold_answer(r["answer"]) for r in TEST_ROWS]
    assert sum(hits) == len(TEST_ROWS)


def test_agrees_with_the_rlvr_verifier_extraction():
    for row in TEST_ROWS:
        assert gsm8k.extract_answer(row["answer"]) == verifiers.extract_answer(row["answer"])
    for text in ("So the answer is 1,234.", "x 3 then 4.5", "none", "answer is: $-7"):
        assert gsm8k.extract_answer(text) == verifiers.extract_answer(text)


def test_extraction_rules():
    assert gsm8k.extract_answer("The answer is 12. Then 99 more") == "12"
    assert gsm8k.extract_answer("5 apples and 1,000 pears") == "1000"
    assert gsm8k.extract_answer("no digits") is None
    assert gsm8k.gold_answer("work\n#### 1,200") == "1200"
    with pytest.raises(ValueError, match="####"):
        gsm8k.gold_answer("no marker 5")


def test_exemplars_and_chat_prompt():
    shots = sources.read_jsonl(GSM8K_SHOTS)
    assert len(shots) == 8
    assert all(gsm8k.extract_answer(s["cot_answer"]) == s["short_answer"] for s in shots)
    bundled = sources.read_jsonl(sources.bundled("tulu_gsm8k_8shot_cot.jsonl"))
    assert bundled == shots
    messages = gsm8k.chat_messages("How many?", shots)
    assert len(messages) == 17
    assert [m["role"] for m in messages[:2]] == ["user", "assistant"]
    assert messages[-1] == {"role": "user", "content": "Question: How many?\nAnswer:"}
    assert messages[1]["content"].endswith("So the answer is 6.")


def test_score_and_recompute_from_files(tmp_path, capsys):
    rows = TEST_ROWS[:10]
    preds = tmp_path / "preds.jsonl"
    responses = [
        r["answer"] if i % 2 == 0 else "I think the answer is 0.5." for i, r in enumerate(rows)
    ]
    preds.write_text(
        "".join(
            json.dumps({"question": r["question"], "response": t}) + "\n"
            for r, t in zip(rows, responses, strict=True)
        )
    )
    out = tmp_path / "result"
    code, text = run_cli([*score_argv(preds), "--out", str(out), "--json"], capsys)
    result = json.loads(text)
    assert code == 0
    assert result["metrics"] == {"exact_match": 0.5, "no_answer": 0.0}
    assert result["primary"] == 0.5 and len(result["spec_hash"]) == 64
    assert result["spec"]["dataset_rows"] == len(TEST_ROWS)

    code, text = run_cli(["eval", "recompute", str(out)], capsys)
    assert code == 0 and "reproduced exactly" in text

    # An edited prediction is caught: digest and metric both differ.
    lines = (out / "predictions.jsonl").read_text().splitlines()
    lines[1] = lines[1].replace("0.5", str(gsm8k.gold_answer(rows[1]["answer"])))
    (out / "predictions.jsonl").write_text("\n".join(lines) + "\n")
    code, text = run_cli(["eval", "recompute", str(out)], capsys)
    assert code == 1 and "metric exact_match" in text and "blake3 differs" in text


def test_score_refuses_unknown_questions(tmp_path, capsys):
    preds = tmp_path / "preds.jsonl"
    preds.write_text(json.dumps({"question": "not in the set", "response": "4"}) + "\n")
    with pytest.raises(SystemExit) as done:
        main(score_argv(preds))
    assert done.value.code == 2
    assert "line 1" in capsys.readouterr().err
