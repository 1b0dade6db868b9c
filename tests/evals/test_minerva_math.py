r"""MATH ``minerva_math::tulu``: the shared ``math_flex`` verifier row by row, the 4-shot chat
prompt of a real test item, scoring from files (macro over subjects) and recompute.

Expected outcomes in ``data/math_flex_responses.jsonl`` were derived by hand from the reference
rules (open-instruct ``MathVerifier`` / OLMES ``exact_match_flex``): ``flex`` with the Hendrycks
equivalence alone (this environment has no antlr4 4.11, so sympy's LaTeX parser cannot run),
``flex_sympy`` where sympy's ``simplify(a - b) == 0`` also runs (null: not derived by hand).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals import (
    generative,
    math_answer,
    minerva_math,
    minerva_math_family,
    results,
    rowschema,
    sources,
    verifiers,
)
from evals.registry import get_spec
from reprolm.cli import main
from tests.evals.cli import run_cli

FIXTURE = Path(__file__).parents[1] / "fixtures" / "minerva_math" / "test_sample.jsonl"
CASES_FILE = Path(__file__).parent / "data" / "math_flex_responses.jsonl"
CASES = [json.loads(line) for line in CASES_FILE.open()]
SYMPY = math_answer.sympy_available()


@pytest.mark.parametrize("case", CASES, ids=[c["case"] for c in CASES])
def test_flex_and_strict_row_by_row(case):
    expected = case["flex_sympy"] if SYMPY else case["flex"]
    if expected is None:
        pytest.skip("outcome under sympy not derived by hand")
    assert verifiers.get_verifier("math_flex")(case["response"], case["gold"]) == expected
    if not SYMPY:
        assert math_answer.strict_match(case["response"], case["gold"]) == bool(case["strict"])


def test_cases_cover_the_listed_forms():
    names = {c["case"] for c in CASES}
    for needed in ("boxed", "nested_braces", "dfrac_vs_frac", "decimal_vs_frac12",
                   "units_text_in_box", "final_answer_phrase", "no_answer"):  # fmt: skip
        assert needed in names
    assert sum(c["flex"] for c in CASES) == 16 and len(CASES) == 23


def test_extraction_pieces():
    assert (
        math_answer.last_boxed(r"a \boxed{x^{2}} b \boxed{\frac{1}{2}} c") == r"\boxed{\frac{1}{2}}"
    )
    assert math_answer.last_boxed(r"\boxed{unclosed") is None
    assert math_answer.unbox(r"\fbox{3}") is None  # found, but not unboxed: no candidate
    assert (
        math_answer.minerva_final("Final Answer: The final answer is $3$. I hope it is correct.")
        == "$3$"
    )
    assert math_answer.normalize_final_answer(r"x = \$1,000") == "1000"
    assert (
        math_answer.normalize_final_answer(r"\left( 3, \frac{\pi}{2} \right)")
        == r"\le(3,\frac{\pi}{2}\right)"
    )
    assert math_answer.strip_string(r"\frac 1 2") == r"\frac{1}{2}"
    assert math_answer.strip_string(r"50\%") == "50"
    assert math_answer.strip_string(r"k = .5") == r"\frac{1}{2}"
    with pytest.raises(ValueError, match=r"no \\boxed"):
        math_answer.gold_of_solution("the answer is 4")


def test_the_task_scores_with_the_registered_verifier(monkeypatch):
    calls = []
    original = verifiers.VERIFIERS["math_flex"]
    monkeypatch.setitem(
        verifiers.VERIFIERS, "math_flex", lambda r, g: calls.append((r, g)) or original(r, g)
    )
    row = minerva_math_family.rescore({"response": r"\boxed{2}", "gold": "2", "subject": "algebra"})
    assert calls == [(r"\boxed{2}", "2")] and row["exact_match_flex"] == 1.0


def test_real_item_renders_to_the_reference_prompt():
    spec = get_spec("minerva_math::tulu")
    item = sources.read_rows(FIXTURE)[0]
    shots = sources.read_jsonl(sources.bundled(spec.fewshot.file))[: spec.fewshot.n]
    messages = minerva_math.chat_messages(item["problem"], shots)
    assert [m["role"] for m in messages] == ["user", "assistant"] * 4 + ["user"]
    assert messages[0]["content"] == (
        "Problem:\nFind the domain of the expression  $\\frac{\\sqrt{x-2}}{\\sqrt{5-x}}$.}"
        "\n\nSolution:"
    )
    assert messages[3]["content"] == (
        "We have that $\\det (\\mathbf{A} \\mathbf{B}) = (\\det \\mathbf{A})(\\det \\mathbf{B})"
        " = (2)(12) = \\boxed{24}.$\nFinal Answer: The final answer is $24$. I hope it is correct."
    )
    assert messages[-1]["content"] == (
        "Problem:\nConvert the point $(0,3)$ in rectangular coordinates to polar coordinates.  "
        "Enter your answer in the form $(r,\\theta),$ where $r > 0$ and $0 \\le \\theta < 2 "
        "\\pi.$\n\nSolution:"
    )
    assert math_answer.gold_of_solution(item["solution"]) == r"\le(3,\frac{\pi}{2}\right)"
    # every exemplar is scored correct against its own gold
    for shot in shots:
        assert math_answer.flex_match(
            shot["solution"], math_answer.gold_of_solution(shot["solution"])
        )


def test_spec_settings():
    spec = get_spec("minerva_math::tulu")
    assert (spec.fewshot.n, spec.primary_metric, spec.split) == (4, "exact_match_flex", "test")
    assert spec.sample_threshold >= 5000  # every test instance, as OLMES runs it
    assert minerva_math.MAX_GEN_TOKS == 1024


def test_score_macro_over_subjects_and_recompute(tmp_path, capsys):
    item = sources.read_rows(FIXTURE)[0]
    final = (
        "Final Answer: The final answer is $\\left( 3, \\frac{\\pi}{2} \\right)$. "
        "I hope it is correct."
    )
    rows = [
        {"problem": item["problem"], "response": final},  # gold and subject from --data
        {
            "problem": "p1",
            "response": "$\\boxed{2}$",
            "solution": "$\\boxed{2}$",
            "type": "Algebra",
        },
        {
            "problem": "p2",
            "response": "$\\boxed{3}$",
            "solution": "$\\boxed{2}$",
            "type": "Algebra",
        },
        {"problem": "p3", "response": "no idea", "solution": "$\\boxed{2}$", "type": "Algebra"},
    ]
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "result"
    argv = ["eval", "score", "minerva_math::tulu", "--predictions", str(preds), "--data",
            str(FIXTURE), "--out", str(out), "--json"]  # fmt: skip
    code, text = run_cli(argv, capsys)
    result = json.loads(text)
    assert code == 0
    m = result["metrics"]
    # precalculus 1/1, algebra 1/3: macro (1 + 1/3) / 2 = 2/3, micro 2/4
    assert m["exact_match_flex_precalculus"] == 1.0
    assert m["exact_match_flex_algebra"] == pytest.approx(1 / 3)
    assert result["primary"] == pytest.approx(2 / 3) and m["exact_match_flex_micro"] == 0.5
    assert m["exact_match"] == pytest.approx(0.5)  # only the "Final Answer" row counts
    assert result["spec"]["equivalence"] == ("sympy+hendrycks" if SYMPY else "hendrycks")

    code, text = run_cli(["eval", "recompute", str(out)], capsys)
    assert code == 0 and "reproduced exactly" in text


def test_score_refuses_rows_without_gold(tmp_path, capsys):
    preds = tmp_path / "preds.jsonl"
    preds.write_text(json.dumps({"problem": "unknown", "response": "4"}) + "\n")
    with pytest.raises(SystemExit) as done:
        main(["eval", "score", "minerva_math::tulu", "--predictions", str(preds)])
    assert done.value.code == 2
    assert "preds.jsonl:1: problem not in the dataset" in capsys.readouterr().err


def test_row_schema(tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_text(FIXTURE.read_text())
    assert rowschema.check_dataset(good, ["minerva_math::tulu"]) == 1
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps({"problem": "p", "solution": "4", "type": "Algebra"})
        + "\n"
        + json.dumps({"problem": "p", "solution": "\\boxed{4}"})
        + "\n"
    )
    with pytest.raises(rowschema.DatasetError) as error:
        rowschema.check_dataset(bad, ["minerva_math::tulu"])
    assert "bad.jsonl:1: minerva_math: 'solution' has no \\boxed" in str(error.value)
    assert "bad.jsonl:2: minerva_math: no 'type'" in str(error.value)


def test_texts_are_the_problems():
    assert minerva_math_family.texts(FIXTURE) == [sources.read_rows(FIXTURE)[0]["problem"]]


@pytest.mark.slow
def test_run_through_lm_eval_on_a_tiny_chat_model(tmp_path, tiny_model, capsys):
    """End to end: ``reprolm eval run`` renders the 4-shot chat prompt with the model's chat
    template, generates through lm-eval, scores with ``math_flex`` and recomputes exactly."""
    from tests.evals.chat_model import build_chat_model

    model = build_chat_model(tiny_model, tmp_path / "model", 4096)
    out = tmp_path / "result"
    argv = ["eval", "run", "minerva_math::tulu", "--model", str(model), "--data", str(FIXTURE),
            "--out", str(out), "--max-gen-toks", "8"]  # fmt: skip
    code, _ = run_cli(argv, capsys)
    assert code == 0
    request = sources.read_jsonl(out / "requests.jsonl")[0]
    context = request["context"]
    assert context.startswith("<|im_start|>user\nProblem:\nFind the domain of the expression")
    assert context.count("<|im_start|>assistant\n") == 5 and context.count("I hope it is") == 4
    assert context.endswith("\\pi.$\n\nSolution:<|im_end|>\n<|im_start|>assistant\n")
    assert request["truncated_tokens"] == 0
    result = results.load_result(out)
    assert result["harness"]["generation"]["until"] == list(generative.END_OF_TURN)
    assert result["primary_metric"] == "exact_match_flex" and result["instances"] == 1
    row = sources.read_jsonl(out / "predictions.jsonl")[0]
    assert row["gold"] == r"\le(3,\frac{\pi}{2}\right)" and row["subject"] == "precalculus"
    assert row["exact_match_flex"] == verifiers.math_flex(row["response"], row["gold"])
    code, text = run_cli(["eval", "recompute", str(out)], capsys)
    assert code == 0 and "reproduced exactly" in text
