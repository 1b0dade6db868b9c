"""Digital Socrates: the model card's critique parses to its recorded elements, malformed
critiques are counted, metrics on a hand-made set, a tiny-model run and exact recompute."""

from __future__ import annotations

import json

import pytest
from scipy.stats import pearsonr

from evals import digital_socrates as ds
from evals import results, sources
from evals.families import RunOptions, family_of
from evals.registry import get_spec
from reprolm.cli import main
from tests.evals.research.conftest import FIXTURES

EXAMPLE = json.loads((FIXTURES / "ds_critique" / "example_critique.json").read_text())


def test_the_model_card_critique_parses_to_its_recorded_elements():
    parsed = ds.parse_critique(EXAMPLE["critique_text"])
    assert parsed.pop("well_formed") is True
    assert parsed == EXAMPLE["critique_elements"]


@pytest.mark.parametrize(
    "text",
    [
        EXAMPLE["critique_text"].replace("Explanation score: 2", "Explanation score: 7"),
        EXAMPLE["critique_text"].replace("Explanation score: 2", "Explanation score: two"),
        EXAMPLE["critique_text"].replace("* Dimension: incorrect_information\n", ""),
        EXAMPLE["critique_text"].split("Consider these")[0],
        "",
    ],
)
def test_malformed_critiques_are_not_well_formed(text):
    assert ds.parse_critique(text)["well_formed"] is False


def _critique(dimension: str, score: int | str) -> str:
    return (
        "The explanation states or suggests the following:\n"
        '* Main flaw (standalone statement): "x"\n'
        f"* Dimension: {dimension}\n\nConsider these points for revising the explanation:\n"
        f"* General: g\n* Specific: s\n\nExplanation score: {score}"
    )


def test_metrics_on_a_hand_made_set():
    made = [
        (_critique("incorrect_information", 2), "incorrect_information", 1),
        (_critique("Lack justification", 4), "lack_justification", 5),
        (_critique("misunderstanding", 0), "incomplete_reasoning", 1),
        (_critique("misunderstanding", "n/a"), "misunderstanding", 3),  # no score: malformed
    ]
    rows = [
        ds.rescore({"critique_text": t, "gold_dimension": d, "gold_score": s}) for t, d, s in made
    ]
    m = ds.metrics(rows)
    assert m["well_formed"] == 3 / 4
    assert m["dimension_acc"] == 3 / 4
    assert m["scored_frac"] == 3 / 4
    assert m["score_mae"] == pytest.approx((1 + 1 + 1) / 3)
    assert m["score_pearson"] == pytest.approx(pearsonr([2, 4, 0], [1, 5, 1]).statistic)
    constant = [ds.rescore({**rows[0], "critique_text": _critique("x", 3)}) for _ in range(3)]
    assert "score_pearson" not in ds.metrics(constant)  # undefined: omitted, never NaN


def _items(tmp_path, n=3):
    keep = ("question", "student_explanation", "predictedanswer", "answerkey", "critique_elements")
    data = tmp_path / "items.jsonl"
    rows = [{"id": f"q{i}", **{k: EXAMPLE[k] for k in keep}} for i in range(n)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return data


def test_score_from_files_recompute_and_tamper(tmp_path, capsys):
    data = _items(tmp_path)
    preds = tmp_path / "preds.jsonl"
    texts = [EXAMPLE["critique_text"], _critique("misunderstanding", 4), "garbage"]
    preds.write_text("".join(json.dumps({"critique_text": t}) + "\n" for t in texts))
    out = tmp_path / "scored"
    argv = ["eval", "score", "ds_critique::dscb", "--predictions", str(preds), "--data", str(data)]
    with pytest.raises(SystemExit) as done:
        main([*argv, "--out", str(out), "--json"])
    assert done.value.code == 0
    m = json.loads(capsys.readouterr().out)["metrics"]
    assert (m["well_formed"], m["dimension_acc"], m["score_mae"]) == (2 / 3, 1 / 3, 1.0)
    assert results.recompute(out)["problems"] == []
    rows = sources.read_jsonl(out / "predictions.jsonl")
    rows[2]["critique_text"] = EXAMPLE["critique_text"]
    (out / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    problems = results.recompute(out)["problems"]
    assert any("blake3" in p for p in problems) and any("well_formed" in p for p in problems)


def test_items_without_gold_are_refused(tmp_path):
    data = tmp_path / "items.jsonl"
    data.write_text(json.dumps({k: EXAMPLE[k] for k in ds.FIELDS}) + "\n")
    with pytest.raises(ValueError, match=r"items.jsonl:1: no gold critique"):
        ds.check_items(data, sources.read_jsonl(data))


def test_runs_on_the_tiny_model_and_recomputes(chat_model, chat_lm, tmp_path):
    data = _items(tmp_path, n=2)
    spec = get_spec("ds_critique::dscb")
    options = RunOptions(max_gen_toks=4, lm=chat_lm)
    result = family_of(spec).evaluate(spec, chat_model, data, tmp_path / "r", options)
    assert result["instances"] == 2 and result["primary_metric"] == "dimension_acc"
    assert result["metrics"]["well_formed"] == 0.0  # 4 random tokens are no critique
    request = sources.read_jsonl(tmp_path / "r" / "requests.jsonl")[0]["context"]
    assert "Answer sheet: (C)" in request and "Student answer: (D)" in request
    assert request.startswith("<|im_start|>system\nYou are a helpful and rigorous tutor.")
    assert results.recompute(tmp_path / "r")["problems"] == []
