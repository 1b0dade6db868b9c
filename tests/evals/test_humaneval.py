"""HumanEval(+) with Tulu 3's settings: pass@k by hand, the exact prompt, scoring from files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals import humaneval, sources
from evals.registry import get_spec
from reprolm.cli import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "humaneval"
HUMANEVAL = FIXTURES / "HumanEval.jsonl"
PLUS = FIXTURES / "HumanEvalPlus.jsonl"
TULU_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}"
    "{{ '<|user|>\\n' + message['content'] + '\\n' }}{% endif %}"
    "{% if loop.last and add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}{% endfor %}"
)


def test_pass_at_k_against_hand_computed_values():
    assert humaneval.pass_at_k(5, 2, 1) == pytest.approx(0.4)
    assert humaneval.pass_at_k(5, 2, 2) == pytest.approx(0.7)  # 1 - C(3,2)/C(5,2) = 1 - 3/10
    assert humaneval.pass_at_k(20, 1, 10) == pytest.approx(0.5)  # 1 - C(19,10)/C(20,10)
    assert humaneval.pass_at_k(20, 0, 10) == 0.0
    assert humaneval.pass_at_k(20, 11, 10) == 1.0  # n - c < k
    with pytest.raises(ValueError, match="k <= n"):
        humaneval.pass_at_k(5, 1, 10)


def test_a_real_item_renders_to_the_reference_prompt():
    from jinja2 import Template

    problem = sources.read_jsonl(HUMANEVAL)[1]
    user = Template(TULU_TEMPLATE).render(
        messages=humaneval.messages(problem), add_generation_prompt=True
    )
    doc = (
        "\n\ndef truncate_number(number: float) -> float:\n"
        '    """ Given a positive floating point number, it can be decomposed into\n'
        "    and integer part (largest integer smaller than given number) and decimals\n"
        "    (leftover part always smaller than 1).\n\n"
        "    Return the decimal part of the number.\n"
        "    >>> truncate_number(3.5)\n    0.5\n"
        '    """\n'
    )
    expected = (
        "<|user|>\nComplete the following function:\n" + doc + "\n<|assistant|>\n"
        "Here is the completed function:\n\n```python\n" + doc
    )
    assert humaneval.context(user, problem) == expected


def test_scoring_a_completions_file_gives_hand_computed_metrics(tmp_path, capsys):
    right0 = (
        "    for i, a in enumerate(numbers):\n        for b in numbers[i + 1:]:\n"
        "            if abs(a - b) < threshold:\n                return True\n    return False\n"
    )
    wrong = ["    return False\n", "    raise ValueError('no')\n", "    import sys; sys.exit(0)\n",
             "    import subprocess\n    subprocess.run(['true'])\n", "    return True\n",
             "    return None\n", "    return 1\n"]  # fmt: skip
    lines = [{"task_id": "HumanEval/0", "completion": c} for c in [right0] * 3 + wrong]
    # HumanEval/2: 10 wrong samples (one list row).
    lines.append({"task_id": "HumanEval/2", "completions": ["    return 0.5\n"] * 10})
    preds = tmp_path / "completions.jsonl"
    preds.write_text("".join(json.dumps(x) + "\n" for x in lines))
    argv = ["eval", "score", "codex_humaneval::tulu", "--predictions", str(preds),
            "--data", str(HUMANEVAL), "--out", str(tmp_path / "out"), "--json"]  # fmt: skip
    with pytest.raises(SystemExit) as done:
        main(argv)
    result = json.loads(capsys.readouterr().out)
    assert done.value.code == 0
    # pass@1 = (3/10 + 0/10) / 2; pass@10 = (1 + 0) / 2; 1 crashed (subprocess) of 20.
    assert result["metrics"]["pass_at_1"] == pytest.approx(0.15)
    assert result["primary_metric"] == "pass_at_10" and result["primary"] == pytest.approx(0.5)
    assert result["metrics"]["share_crashed"] == pytest.approx(0.05)
    rows = sources.read_jsonl(tmp_path / "out" / "predictions.jsonl")
    statuses = [s["status"] for s in rows[0]["samples"]]
    assert statuses == ["passed"] * 3 + ["failed", "failed", "failed", "crashed"] + ["failed"] * 3
    from evals.results import recompute

    assert recompute(tmp_path / "out")["problems"] == []


def test_humanevalplus_runs_the_extended_tests():
    problems = sources.read_jsonl(PLUS)
    # Correct on HumanEval/0's base tests but wrong on the empty list: the plus tests catch it.
    fragile = (
        "    return min(abs(a - b) for i, a in enumerate(numbers) for b in numbers[i+1:])"
        " < threshold\n"
    )
    rows = humaneval.execute(problems[:1], [[problems[0]["canonical_solution"], fragile]],
                             "codex_humanevalplus")  # fmt: skip
    assert [s["status"] for s in rows[0]["samples"]] == ["passed", "failed"]
    assert get_spec("codex_humanevalplus::tulu").primary_metric == "pass_at_10"


def test_bad_rows_and_predictions_name_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"task_id": "x", "prompt": "def f():\n"}) + "\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:1: .*'test'"):
        humaneval.read_problems(bad)
    preds = tmp_path / "p.jsonl"
    preds.write_text(json.dumps({"task_id": "HumanEval/99", "completion": "x"}) + "\n")
    with pytest.raises(ValueError, match=r"p.jsonl:1: needs a 'task_id'"):
        humaneval.score_file(get_spec("codex_humaneval::tulu"), preds, HUMANEVAL, None)


@pytest.mark.slow
def test_a_model_run_samples_20_completions_per_problem_and_records_the_settings(tmp_path):
    from evals.families import RunOptions, family_of
    from tests.evals.chat_model import build_chat_model
    from tests.evals.conftest import build_tiny_model

    chat = build_chat_model(build_tiny_model(tmp_path / "m"), tmp_path / "chat")
    spec = get_spec("codex_humaneval::tulu")
    options = RunOptions(limit=1, max_gen_toks=8)
    result = family_of(spec).evaluate(spec, chat, HUMANEVAL, tmp_path / "out", options)
    rows = sources.read_jsonl(tmp_path / "out" / "predictions.jsonl")
    assert result["instances"] == 1 and rows[0]["n"] == 20 and len(rows[0]["samples"]) == 20
    generation = result["spec"]["generation"]
    assert (generation["temperature"], generation["top_p"], generation["repeats"]) == (
        0.8,
        0.95,
        20,
    )
    assert {s["status"] for s in rows[0]["samples"]} <= set(
        ("passed", "failed", "timeout", "crashed")
    )
