"""SimpleToM: upstream prompt and parsing on the recorded GPT-5 outputs, per-type metrics, scoring
from files, the two-pass reminder variant on the tiny model, recompute."""

from __future__ import annotations

import json

import pytest

from evals import results, simpletom, sources
from evals.families import RunOptions, family_of
from evals.registry import get_spec
from reprolm.cli import main
from tests.evals.cli import run_cli
from tests.evals.research.conftest import EVAL_DATA, FIXTURES

ITEMS = EVAL_DATA / "simpletom" / "items_sample.jsonl"
GPT5 = FIXTURES / "simpletom" / "gpt5_cot_outputs.jsonl"


def test_prompt_is_byte_identical_to_the_upstream_recorded_prompts():
    items = {r["id"]: r for r in sources.read_jsonl(ITEMS)}
    for out in sources.read_jsonl(GPT5):
        item = dict(items[out["id"]])
        if out["id"].endswith("judge"):  # the released question ends in "as: " (see SOURCE.md)
            item["question"] += " "
        assert simpletom.prompt(item, simpletom.COT_FINAL) == out["prompt"]


def test_parsing_the_recorded_gpt5_outputs_reproduces_their_correctness():
    items = {r["id"]: r for r in sources.read_jsonl(ITEMS)}
    outputs = sources.read_jsonl(GPT5)
    assert len(outputs) == 6
    for out in outputs:
        predicted = simpletom.parse_answer(out["response"], cot=True)
        assert predicted == out["predicted"] == items[out["id"]]["gpt5_cot_predicted"]
        acc = int(predicted == items[out["id"]]["answerKey"])
        assert acc == out["acc"] == items[out["id"]]["gpt5_cot_acc"]


@pytest.mark.parametrize(
    ("text", "cot", "expected"),
    [
        ("Answer: (B)", False, "B"),
        ("(B) maybe, or (A)", False, "A"),  # upstream: first in label order, not text order
        ("(B", False, "B"),
        ("(A or (B", False, "(A or (B"),  # two partial labels: ambiguous, invalid
        ("B", False, "B"),
        ("Answer: A", False, "A"),  # "answer" is removed before the bare-letter pass
        ("no idea", False, "no idea"),
        ("(A) looks right, but the answer is: (B)", True, "B"),
        ("first the answer is (A); finally The answer is (B).", True, "B"),
    ],
)
def test_answer_parsing_rules(text, cot, expected):
    assert simpletom.parse_answer(text, cot) == expected


def _row(qtype: str, response: str, gold: str) -> dict:
    base = {"qtype": qtype, "gold": gold, "labels": ["A", "B"], "response": response}
    return simpletom.rescore(base, cot=False)


def test_metrics_per_question_type_on_a_hand_made_set():
    rows = [
        _row("aware", "(A)", "A"),
        _row("aware", "(B)", "A"),
        _row("action", "(A)", "A"),
        _row("action", "(A)", "A"),
        _row("action", "dunno", "B"),
        _row("judge", "(B)", "B"),
        _row("judge", "nope", "A"),
        _row("judge", "(A)", "B"),
    ]
    m = simpletom.metrics(rows)
    assert m == {
        "acc": 4 / 8,
        "invalid_frac": 2 / 8,
        "acc_aware": 1 / 2,
        "invalid_frac_aware": 0.0,
        "acc_action": 2 / 3,
        "invalid_frac_action": 1 / 3,
        "acc_judge": 1 / 3,
        "invalid_frac_judge": 1 / 3,
    }


def test_reminder_prompt_carries_the_models_answer():
    items = sources.read_jsonl(ITEMS)
    aware, action = items[0], items[2]
    reminder = {"question": aware["question"], "choices": aware["choices"]["text"], "answer": "A"}
    text = simpletom.prompt(action, simpletom.PLAIN_FINAL, reminder)
    assert (
        f"Story:\n{action['story']}\n\nQuestion: {aware['question']} \n(A) Yes \n(B) No\n"
        "Answer: (A)\n\nQuestion: What will Mary likely do next? \n(A) pay"
    ) in text
    assert text.endswith('What is the correct answer? Respond with just "(A)" or "(B)"\n')


def test_score_upstream_outputs_recompute_and_tamper(tmp_path, capsys):
    out = tmp_path / "scored"
    argv = ["eval", "score", "simpletom:cot::paper", "--predictions", str(GPT5)]
    code, text = run_cli([*argv, "--data", str(ITEMS), "--out", str(out), "--json"], capsys)
    assert code == 0, text
    m = json.loads(text)["metrics"]
    assert (m["acc"], m["acc_aware"], m["acc_action"], m["acc_judge"]) == (2 / 6, 1.0, 0.0, 0.0)
    assert m["invalid_frac"] == 0.0
    assert run_cli(["eval", "recompute", str(out)], capsys)[0] == 0
    rows = sources.read_jsonl(out / "predictions.jsonl")
    rows[2]["response"] = "Therefore, the answer is: (A)"
    (out / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, text = run_cli(["eval", "recompute", str(out)], capsys)
    assert code == 1 and "blake3 differs" in text and "metric acc_action" in text


def test_bad_items_are_refused_naming_the_line(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "x_aware", "story": "s", "question": "q"}) + "\n")
    argv = ["eval", "score", "simpletom::paper", "--predictions", str(GPT5), "--data", str(bad)]
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2
    assert f"{bad}:1: SimpleToM item lacks choices, answerKey" in capsys.readouterr().err


def test_remind_variant_runs_two_passes_on_the_tiny_model(chat_model, chat_lm, tmp_path):
    spec = get_spec("simpletom::remind")
    options = RunOptions(max_gen_toks=3, lm=chat_lm)
    result = family_of(spec).evaluate(spec, chat_model, ITEMS, tmp_path / "r", options)
    assert result["instances"] == 6 and result["kind"] == "simpletom"
    assert set(result["metrics"]) >= {"acc", "invalid_frac", "acc_aware", "acc_judge"}
    assert result["harness"]["max_gen_toks"] == 3
    requests = sources.read_jsonl(tmp_path / "r" / "requests.jsonl")
    assert [r["pass"] for r in requests] == [1, 1, 2, 2, 2, 2]  # aware asked once, not twice
    assert requests[0]["context"].startswith("<|im_start|>system\nYou are a helpful assistant.")
    rows = sources.read_jsonl(tmp_path / "r" / "predictions.jsonl")
    aware = {r["id"]: r for r in rows if r["qtype"] == "aware"}
    for row in rows:
        if row["qtype"] != "aware":
            reminder = row["reminder"]
            assert reminder["response"] == aware[reminder["id"]]["response"]
            assert reminder["answer"] == simpletom.parse_answer(reminder["response"], cot=False)
            ctx = next(r["context"] for r in requests if r["id"] == row["id"])
            assert f"Answer: ({reminder['answer']})\n" in ctx
    assert results.recompute(tmp_path / "r")["problems"] == []


def test_remind_needs_the_aware_item(chat_model, chat_lm, tmp_path):
    data = tmp_path / "no_aware.jsonl"
    rows = [r for r in sources.read_jsonl(ITEMS) if not r["id"].endswith("aware")]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = get_spec("simpletom::remind")
    with pytest.raises(ValueError, match="no '<story>_aware' item for potato_chip_food_sev1"):
        family_of(spec).evaluate(spec, chat_model, data, tmp_path / "r", RunOptions(lm=chat_lm))
