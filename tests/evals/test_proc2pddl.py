"""The proc2pddl task family: prompts, scoring of predicted action files, recompute, and a run
on the tiny random model (whose garbage must still be scored and recompute exactly)."""

from __future__ import annotations

import dataclasses
import json
import pathlib
import shutil

import pytest

from evals import results
from evals.families import RunOptions, family_of
from evals.pddl.parser import parse_action
from evals.proc2pddl import data as p2data
from evals.proc2pddl import prompts, scoring
from evals.registry import get_spec
from reprolm import cli

FIXTURE = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "proc2pddl"
FAST = ("113996609", "114061278", "114540181")  # 13 problems, all solved in < 0.1 s each
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> pathlib.Path:
    """The fixture restricted to the three fast domains (same layout)."""
    root = tmp_path_factory.mktemp("p2data")
    for domain in FAST:
        shutil.copytree(FIXTURE / "pddl_data" / domain, root / "pddl_data" / domain)
    (root / "gold_plans").mkdir()
    for plan in (FIXTURE / "gold_plans").glob("*.txt"):
        if plan.name.startswith(FAST):
            shutil.copy(plan, root / "gold_plans" / plan.name)
    return root


def gold_actions(domain: str) -> str:
    text = (FIXTURE / "pddl_data" / domain / "domain.pddl").read_text()
    return text[text.index("(:action") :]


def _score(capsys, predictions: pathlib.Path, data: pathlib.Path, out: pathlib.Path) -> dict:
    with pytest.raises(SystemExit) as caught:
        cli.main(["eval", "score", "proc2pddl", "--predictions", str(predictions),
                  "--data", str(data), "--out", str(out), "--json"])  # fmt: skip
    assert caught.value.code == 0
    return json.loads(capsys.readouterr().out)


def test_prompts_follow_the_upstream_templates():
    cases, _ = p2data.load(FIXTURE)
    case = cases[0]
    with_text = prompts.user_prompt(case, "with_text")
    no_text = prompts.user_prompt(case, "no_text")
    for prompt in (with_text, no_text):
        assert prompt.startswith("could you fill out ALL the pddl actions orderly")
        assert "(:action carve_groove ; create a grove" in prompt
        assert "(has_fish ?loc - location) ; see if location has fish" in prompt
        assert "(:types" in prompt and "(:requirements :strips :typing)" in prompt
    assert "here are the texts containing steps to survive deserted island:\n1. Find" in with_text
    assert "Find a fresh water source" not in no_text
    assert "actions I want to survive deserted island:" in no_text


def test_extraction_and_assembly_follow_upstream():
    completion = "Sure! Here:\n```pddl\n(:action go\n  :parameters (?a)\n)\n```\nNote: done\n"
    assert scoring.extract_actions(completion) == "(:action go\n  :parameters (?a)\n)"
    header = "(define (domain d)\n (:predicates (p))"
    assert scoring.assemble(header, "(:action a)").endswith("(:action a)\n)\n")
    assert scoring.assemble(header, "(:action a)\n)").endswith("(:action a)\n)\n")  # upstream file


def test_action_comparison_is_up_to_variable_renaming():
    gold = parse_action("(:action m :parameters (?a - t ?b - t) :precondition (and (p ?a ?b))"
                        " :effect (and (q ?b) (not (p ?a ?b))))")  # fmt: skip
    renamed = parse_action("(:action m :parameters (?y - t ?x - t) :precondition (p ?y ?x)"
                           " :effect (and (not (p ?y ?x)) (q ?x)))")  # fmt: skip
    swapped = parse_action("(:action m :parameters (?a - t ?b - t) :precondition (p ?a ?b)"
                           " :effect (and (q ?a) (not (p ?a ?b))))")  # fmt: skip
    retyped = parse_action("(:action m :parameters (?a - t ?b - u) :precondition (p ?a ?b)"
                           " :effect (and (q ?b) (not (p ?a ?b))))")  # fmt: skip
    assert scoring.same_up_to_renaming(renamed, gold) == dict.fromkeys(
        ("precondition", "effect", "action"), True
    )
    assert scoring.same_up_to_renaming(swapped, gold) == {
        "precondition": True, "effect": False, "action": False}  # fmt: skip
    assert not any(scoring.same_up_to_renaming(retyped, gold).values())


def test_gold_actions_score_perfectly_and_recompute(capsys, data, tmp_path):
    predictions = tmp_path / "pred"
    predictions.mkdir()
    for domain in FAST:
        (predictions / f"{domain}.txt").write_text(gold_actions(domain))
    result = _score(capsys, predictions, data, tmp_path / "out")
    m = result["metrics"]
    assert result["task_id"] == "proc2pddl::with_text" and result["primary"] == 1.0
    assert m["problems"] == 13 and m["domains"] == 3
    for name in ("solve_rate", "plan_exact_match", "parse_rate", "action_coverage",
                 "action_accuracy", "precondition_accuracy", "effect_accuracy"):  # fmt: skip
        assert m[name] == 1.0, name
    assert results.recompute(tmp_path / "out")["problems"] == []


def test_corrupted_predictions_score_lower_and_tampering_is_detected(capsys, data, tmp_path):
    predictions = tmp_path / "pred"
    predictions.mkdir()
    island = gold_actions("113996609")
    cut = island.index(":effect", island.index("(:action light_fire"))
    island = island[:cut] + island[cut:].replace("(at ?fire ?loc)", "", 1)  # fire never lit
    island = island.replace("?spear", "?s")  # renaming a variable changes nothing
    (predictions / "113996609.txt").write_text(island)
    coconut = gold_actions("114061278").replace("(:action flip", "(:action turn", 1)
    (predictions / "114061278.txt").write_text(coconut)
    (predictions / "114540181.txt").write_text("(:action go :parameters (?p - player")  # broken
    out = tmp_path / "out"
    m = _score(capsys, predictions, data, out)["metrics"]
    rows = results.load_result(out) and [json.loads(x) for x in (out / "predictions.jsonl").open()]
    status = {r["domain_id"]: [p["status"] for p in r["problems"]] for r in rows}
    assert status["113996609"] == ["unsolvable", "unsolvable", "solved", "unsolvable"]
    assert status["114540181"] == ["parse_error"] * 3
    assert m["parse_rate"] == pytest.approx(2 / 3) and m["intrinsic_action_incomplete"] == 1 / 3
    assert m["action_coverage"] == pytest.approx((14 + 6 + 1) / (14 + 7 + 12))
    assert m["solve_rate"] < 1 and m["effect_accuracy"] < m["precondition_accuracy"] < 1
    assert results.recompute(out)["problems"] == []

    # a forged "solved" with a made-up plan: the digest and the replay both catch it
    rows[0]["problems"][0].update(status="solved", plan=["go ('up', 'person', 'beach', 'sky')"])
    (out / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    problems = results.recompute(out)["problems"]
    assert any("blake3 differs" in p for p in problems)
    assert any(p.startswith("metric invalid_plan_rate") for p in problems)


def test_score_refuses_bad_input(data, tmp_path):
    spec = get_spec("proc2pddl")
    score = family_of(spec).score
    (tmp_path / "999.txt").write_text("")
    with pytest.raises(ValueError, match=r"no domain in .* for 999\.txt"):
        score(spec, tmp_path, data, None)
    with pytest.raises(ValueError, match="--data DIR is required"):
        score(spec, tmp_path, None, None)
    with pytest.raises(ValueError, match="no gold plans found"):
        score(spec, tmp_path, data / "pddl_data" / FAST[0], None)


@pytest.mark.slow
def test_tiny_model_end_to_end(tiny_model, data, tmp_path):
    from transformers import AutoTokenizer

    model = tmp_path / "chat-model"
    shutil.copytree(tiny_model, model)
    tokenizer = AutoTokenizer.from_pretrained(model)
    tokenizer.chat_template = CHATML
    tokenizer.save_pretrained(model)
    spec = dataclasses.replace(get_spec("proc2pddl::with_text"), planner_timeout=5.0)
    out = tmp_path / "out"
    result = family_of(spec).evaluate(spec, model, data, out, RunOptions(limit=2, max_gen_toks=24))
    assert result["instances"] == 2 and result["harness"]["max_gen_toks"] == 24
    requests = [json.loads(line) for line in (out / "requests.jsonl").open()]
    assert all(r["context"].startswith("<|im_start|>system\n") for r in requests)
    assert all(r["fits"] for r in requests)
    # the 2048-token context cannot hold the whole wikiHow text: it is cut, and recorded so
    assert any(r["text_chars"] < r["text_chars_full"] for r in requests)
    assert set(result["metrics"]) >= {"solve_rate", "parse_rate", "action_accuracy"}
    assert results.recompute(out)["problems"] == []
