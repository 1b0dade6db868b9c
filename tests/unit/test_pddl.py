"""The PDDL parser, the breadth-first planner, plan replay and ``reprolm pddl solve`` on the
real Proc2PDDL gold domains (tests/fixtures/proc2pddl)."""

from __future__ import annotations

import pathlib
import re

import pytest

from evals.pddl import (
    PDDLParseError,
    format_step,
    parse_domain,
    parse_problem,
    read_plan,
    solve,
    validate_plan,
)
from reprolm import cli

FIXTURE = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "proc2pddl"
DOMAINS = sorted(p for p in (FIXTURE / "pddl_data").iterdir() if p.is_dir())
PROBLEMS = [(d, p) for d in DOMAINS for p in sorted((d / "problems").glob("*.pddl"))]
FIRE_EFFECT = ("light_fire", "(at ?fire ?loc)")  # needed by 3 of the 4 island problems
SLOW_PROBLEM = "114187233_problem-get_coconut_meat_with_oven"  # no gold plan: reference timed out


def _load(domain_dir: pathlib.Path, problem: pathlib.Path, domain_text: str | None = None):
    domain = parse_domain(domain_text or (domain_dir / "domain.pddl").read_text(), "domain")
    return domain, parse_problem(problem.read_text(), domain, problem.name)


def _gold(domain_dir: pathlib.Path, problem: pathlib.Path):
    return read_plan((FIXTURE / "gold_plans" / f"{domain_dir.name}_{problem.stem}.txt").read_text())


def test_gold_domains_parse():
    assert len(DOMAINS) == 5 and len(PROBLEMS) == 22
    for domain_dir in DOMAINS:
        domain = parse_domain((domain_dir / "domain.pddl").read_text(), domain_dir.name)
        names = re.findall(r"\(:action\s+([^\s;]+)", (domain_dir / "actions.txt").read_text())
        assert [a.name for a in domain.actions] == names


@pytest.fixture(scope="module")
def solved():
    """Every gold problem solved once (30 s limit; the one whose gold file records the
    reference planner's timeout gets 2 s and must time out too)."""
    out = {}
    for domain_dir, problem in PROBLEMS:
        key = f"{domain_dir.name}_{problem.stem}"
        domain, parsed = _load(domain_dir, problem)
        out[key] = (domain, parsed, solve(domain, parsed, 2.0 if key == SLOW_PROBLEM else 30.0))
    return out


@pytest.mark.slow
def test_every_gold_problem_is_solved_validly_and_matches_the_gold_plan(solved):
    for domain_dir, problem in PROBLEMS:
        key = f"{domain_dir.name}_{problem.stem}"
        domain, parsed, result = solved[key]
        gold = _gold(domain_dir, problem)
        if key == SLOW_PROBLEM:
            assert gold is None and result.status == "timeout"
            continue
        assert result.status == "solved", key
        assert validate_plan(domain, parsed, result.plan) == "", key
        # the search order reproduces the reference, so the first plan found is the gold one
        # (byte for byte in the gold format), not only one of the same length
        assert [format_step(*s) for s in result.plan] == [format_step(*s) for s in gold], key
        assert result.seconds < 30


def test_gold_plans_replay_and_broken_plans_do_not():
    domain_dir = FIXTURE / "pddl_data" / "113996609"
    problem = domain_dir / "problems" / "problem-catch_cook_fish.pddl"
    domain, parsed = _load(domain_dir, problem)
    gold = _gold(domain_dir, problem)
    assert validate_plan(domain, parsed, gold) == ""
    assert "precondition fails" in validate_plan(domain, parsed, gold[1:])
    assert validate_plan(domain, parsed, gold[:-1]).startswith("goal not reached")
    wrong = [("go", ("east", "person", "beach", "fish")), *gold[1:]]
    assert "not an object of type location" in validate_plan(domain, parsed, wrong)
    assert "no action 'fly'" in validate_plan(domain, parsed, [("fly", ())])


def _without_effect(text: str, action: str, effect: str) -> str:
    start = text.index(f"(:action {action}")
    end = text.index("(:action", start + 1) if "(:action" in text[start + 1 :] else len(text)
    cut = text.index(":effect", start)
    assert effect in text[cut:end]
    return text[:cut] + text[cut:end].replace(effect, "", 1) + text[end:]


def test_a_removed_effect_fails_exactly_the_problems_that_need_it():
    domain_dir = FIXTURE / "pddl_data" / "113996609"
    text = _without_effect((domain_dir / "domain.pddl").read_text(), *FIRE_EFFECT)
    outcomes = {}
    for problem in sorted((domain_dir / "problems").glob("*.pddl")):
        domain, parsed = _load(domain_dir, problem, text)
        needs = any(name == "light_fire" for name, _ in _gold(domain_dir, problem))
        outcomes[problem.stem] = (needs, solve(domain, parsed, 10.0).status)
    assert any(needs for needs, _ in outcomes.values())
    assert any(not needs for needs, _ in outcomes.values())
    for name, (needs, status) in outcomes.items():
        assert status == ("unsolvable" if needs else "solved"), name


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("(define (domain d)\n  (:action a :effect (and (p)))", "line 1, column 1", "never closed"),
        ("(define (domain d))\n)", "line 2, column 1", "without a matching"),
        ("(define (domain d) (:requirements :strips :adl))", "line 1", "requirement :adl"),
        (
            "(define (domain d)\n (:action go\n  :parameters (?x)\n"
            "  :precondition (or (p ?x) (q ?x))\n  :effect (p ?x)))",
            "line 4, column 17 (action go)",
            "only STRIPS literals",
        ),
        (
            "(define (domain d)\n (:action go :vars (?x) :effect (p)))",
            "line 2, column 2 (action go)",
            "unexpected ':vars'",
        ),
        ("(define (domain d) (:action go :effect (not (p) (q))))", "(action go)", "exactly one"),
        ("(define (problem d))", "line 1, column 1", "first section must be (domain"),
    ],
)
def test_parse_errors_say_where(text, where, what):
    with pytest.raises(PDDLParseError) as caught:
        parse_domain(text, "d.pddl")
    assert caught.value.where.startswith("d.pddl") and where in caught.value.where
    assert what in caught.value.message


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as caught:
        cli.main(["pddl", "solve", *argv])
    out = capsys.readouterr()
    return caught.value.code, out.out, out.err


def test_cli_solve_prints_the_plan_in_the_gold_format(capsys):
    domain_dir = FIXTURE / "pddl_data" / "114406878"
    problem = domain_dir / "problems" / "problem-find_tinder.pddl"
    code, out, _ = _cli(capsys, str(domain_dir / "domain.pddl"), str(problem))
    gold = (FIXTURE / "gold_plans" / "114406878_problem-find_tinder.txt").read_text()
    assert code == 0 and out.split("\n") == [*gold.rstrip("\n").split("\n"), ""]


def test_cli_solve_unsolvable_timeout_and_parse_error(capsys, tmp_path):
    domain_dir = FIXTURE / "pddl_data" / "113996609"
    broken = tmp_path / "domain.pddl"
    broken.write_text(_without_effect((domain_dir / "domain.pddl").read_text(), *FIRE_EFFECT))
    fire = str(domain_dir / "problems" / "problem-start_fire.pddl")
    code, out, err = _cli(capsys, str(broken), fire)
    assert (code, out, err.strip()) == (1, "", "unsolvable")

    slow = FIXTURE / "pddl_data" / "114187233"
    problem = slow / "problems" / "problem-get_coconut_meat_with_oven.pddl"
    code, out, err = _cli(capsys, str(slow / "domain.pddl"), str(problem), "--timeout", "0.5")
    assert code == 1 and out == "" and err.startswith("timeout")

    bad = tmp_path / "bad.pddl"
    bad.write_text("(define (domain survive_deserted_island)\n  (:action get :parameters (?x) )\n")
    code, out, err = _cli(capsys, str(bad), fire)
    assert code == 2 and err.startswith(f"parse error: {bad} line 1, column 1")

    code, _, err = _cli(capsys, str(tmp_path / "missing.pddl"), fire)
    assert code == 2 and "missing.pddl: no such PDDL file" in err
