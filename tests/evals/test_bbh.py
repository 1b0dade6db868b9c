"""BBH ``bbh:cot::tulu``: the 3-shot CoT prompt of a real item, answer extraction, scoring from
files (micro over instances, as the Tulu 3 suite reports; macro too) and recompute."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from evals import bbh, rowschema, sources
from evals.registry import get_spec
from tests.evals.cli import run_cli

FIXTURE = Path(__file__).parents[1] / "fixtures" / "bbh" / "test_sample.jsonl"


def test_bundled_prompts_cover_the_27_subtasks_with_3_shots():
    prompts = bbh.prompts()
    assert len(prompts) == 27
    assert all(len(p["shots"]) == 3 for p in prompts.values())
    assert all(s["cot_answer"].startswith("Let's think step by step.") for p in prompts.values()
               for s in p["shots"])  # fmt: skip
    # each exemplar's own answer is extracted as the answer
    shot = prompts["date_understanding"]["shots"][0]
    assert bbh.extract_answer(shot["cot_answer"], "(D)") == "(D)"


def test_real_item_renders_to_the_reference_prompt():
    item = sources.read_rows(FIXTURE)[0]
    messages = bbh.chat_messages(bbh.prompts()[item["subtask"]], item["input"])
    assert len(messages) == 1 and messages[0]["role"] == "user"
    text = messages[0]["content"]
    assert text.startswith(
        "Evaluate the result of a random Boolean expression.\n\n"
        "Q: not ( ( not not True ) ) is\nA: Let's think step by step.\nRemember that (i) "
        "expressions inside brackets are always evaluated first"
    )
    assert text.count("\n\nQ: ") == 4 and text.count("So the answer is") == 3
    assert (
        "Plugging in A, we get: Z = not not ( A ) = not not (True) = not not False = True. "
        "So the answer is True.\n\nQ: not ( True ) and ( True ) is\n" in text
    )
    assert text.endswith("\n\nQ: not ( True ) and ( True ) is\nA: Let's think step by step.")


@pytest.mark.parametrize(
    ("response", "gold", "expected"),
    [
        ("not True = False. So the answer is False.", "False", "False"),
        ("So the answer is (B).", "(B)", "(B)"),
        ("So the answer is (B) 12/25/1937.", "(B)", "(B)"),
        ("the answer is (A). Wait, so the answer is (C).\nDone.", "(C)", "(C)"),
        ("So the answer is valid.", "valid", "valid"),
        ("So the answer is ] ].", "] ]", "] ]"),
        ("The answer is 24", "24", "24"),
        ("I think it is False.", "False", None),
        ("So the answer is yes.", "Yes", "yes"),  # exact match: case counts
    ],
)
def test_extraction(response, gold, expected):
    assert bbh.extract_answer(response, gold) == expected


def test_score_micro_and_macro_and_recompute(tmp_path, capsys):
    items = sources.read_rows(FIXTURE)
    responses = [
        "So the answer is False.",
        "So the answer is False.",  # 1 of 2
        "So the answer is (B).",
        "So the answer is (A).",
    ]  # 2 of 2; fmt: skip
    extra = {
        "subtask": "navigate",
        "input": "x",
        "target": "No",
        "response": "So the answer is Yes.",
    }
    preds = tmp_path / "preds.jsonl"
    preds.write_text(
        "".join(json.dumps({"subtask": i["subtask"], "input": i["input"], "response": r}) + "\n"
                for i, r in zip(items, responses, strict=True))
        + json.dumps(extra) + "\n"
    )  # fmt: skip
    out = tmp_path / "result"
    code, text = run_cli(["eval", "score", "bbh:cot::tulu", "--predictions", str(preds), "--data",
                          str(FIXTURE), "--out", str(out), "--json"], capsys)  # fmt: skip
    assert code == 0
    result = json.loads(text)
    m = result["metrics"]
    assert result["primary_metric"] == "exact_match" and result["primary"] == pytest.approx(3 / 5)
    assert m["exact_match_macro"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert m["exact_match_boolean_expressions"] == 0.5 and m["exact_match_navigate"] == 0.0
    code, text = run_cli(["eval", "recompute", str(out)], capsys)
    assert code == 0 and "reproduced exactly" in text


def test_released_folder_form_and_errors(tmp_path):
    folder = tmp_path / "bbh"
    folder.mkdir()
    rows = sources.read_rows(FIXTURE)
    examples = [{"input": r["input"], "target": r["target"]} for r in rows[:2]]
    (folder / "boolean_expressions.json").write_text(json.dumps({"examples": examples}))
    assert bbh.read_items(folder) == rows[:2]
    (folder / "not_a_task.json").write_text(json.dumps({"examples": examples}))
    with pytest.raises(ValueError, match="unknown BBH subtask 'not_a_task'"):
        bbh.read_items(folder)
    shutil.rmtree(folder)
    folder.mkdir()
    with pytest.raises(ValueError, match=r"no <subtask>\.json files"):
        bbh.read_items(folder)


def test_row_schema(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"input": "q", "target": "x"}) + "\n")
    with pytest.raises(rowschema.DatasetError, match=r"bad\.jsonl:1: bbh: no field .subtask."):
        rowschema.check_dataset(bad, ["bbh:cot::tulu"])
    assert rowschema.check_dataset(FIXTURE, ["bbh:cot::tulu"]) == 4


def test_spec_settings_and_texts():
    spec = get_spec("bbh:cot::tulu")
    assert (spec.fewshot.n, spec.primary_metric, bbh.MAX_GEN_TOKS) == (3, "exact_match", 512)
    assert bbh.texts(FIXTURE)[0] == "not ( True ) and ( True ) is"
