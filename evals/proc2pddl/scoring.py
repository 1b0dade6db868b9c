"""Proc2PDDL scoring: predicted actions -> domain, intrinsic checks, planning, metrics.

Per domain (one prediction row): the predicted ``:action`` blocks are appended to the domain
header (+ one closing parenthesis, the upstream layout); the result parses or not (intrinsic:
pass / parse error / an action of ``actions.txt`` missing); each problem with a gold plan is
solved by the breadth-first planner under the spec's time limit (extrinsic: solved, unsolvable,
timeout, parse error). Problems whose gold plan file records no plan (the reference planner
timed out) are skipped, as the reference ``compare_plan.py`` does.
"""

from __future__ import annotations

import collections
import itertools
import re
from typing import Any

from evals.pddl import (
    Action,
    PDDLParseError,
    format_step,
    parse_domain,
    parse_problem,
    read_plan,
    solve,
    validate_plan,
)
from evals.pddl.parser import parse_action
from evals.proc2pddl.data import DomainCase

_KEEP = re.compile(r"^(\(:action|:parameters|:precondition|:effect|\?|\(|\))")
MAX_RENAMINGS = 40320  # 8! parameter bijections; beyond that an action counts as different


def extract_actions(completion: str) -> str:
    """The upstream post-processing of a completion: drop code fences, keep only lines that
    look like PDDL (``(:action``, ``:parameters``, ``(``, ``)``, ...), squeeze blank lines."""
    lines = [""]
    for line in completion.split("\n"):
        if line:
            line = line.replace("```", "")
            if not _KEEP.match(line.strip()) or "Note:" in line:
                continue
        if lines[-1].strip() or line.strip():
            lines.append(line)
    return "\n".join(lines).strip()


def _depth(text: str) -> int:
    depth = 0
    for line in text.splitlines():
        code = line.split(";", 1)[0]
        depth += code.count("(") - code.count(")")
    return depth


def assemble(header: str, actions: str) -> str:
    """``header`` + actions + ``)``; no parenthesis is added when the actions already close the
    ``(define`` (upstream prediction files end with it)."""
    text = header.rstrip("\n") + "\n" + actions.strip("\n") + "\n"
    return text + ")\n" if _depth(text) > 0 else text


def covered(actions: str, names: list[str]) -> list[str]:
    """The names of ``actions.txt`` that appear as ``(:action <name>`` in the predicted text."""
    found = {m.lower() for m in re.findall(r"\(:action\s+([^\s;()]+)", actions, re.IGNORECASE)}
    return [name for name in names if name in found]


def action_blocks(actions: str) -> dict[str, Action]:
    """Each top-level ``(:action ...)`` block that parses on its own, by name (first wins), so
    one broken block does not hide the others from the per-action comparison."""
    blocks: dict[str, Action] = {}
    depth, start = 0, None
    code = "\n".join(line.split(";", 1)[0] for line in actions.splitlines())
    for i, char in enumerate(code):
        if char == "(":
            if depth == 0:
                start = i
            depth += 1
        elif char == ")" and depth > 0:
            depth -= 1
            if depth == 0 and start is not None:
                try:
                    action = parse_action(code[start : i + 1])
                except PDDLParseError:
                    continue
                blocks.setdefault(action.name, action)
    return blocks


def same_up_to_renaming(pred: Action, gold: Action) -> dict[str, bool]:
    """Whether a bijection of parameters (types preserved) makes the preconditions, the
    effects, and both at once equal as sets of literals."""
    out = {"precondition": False, "effect": False, "action": False}
    if len(pred.parameters) != len(gold.parameters):
        return out
    if sorted(t for _, t in pred.parameters) != sorted(t for _, t in gold.parameters):
        return out
    gold_pre = (set(gold.pre_pos), set(gold.pre_neg))
    gold_eff = (set(gold.add), set(gold.delete))
    for count, mapping in enumerate(_bijections(pred, gold)):
        if count >= MAX_RENAMINGS:
            break

        def rename(atoms, mapping=mapping):
            return {tuple(mapping.get(term, term) for term in atom) for atom in atoms}

        pre = (rename(pred.pre_pos), rename(pred.pre_neg)) == gold_pre
        eff = (rename(pred.add), rename(pred.delete)) == gold_eff
        out["precondition"] |= pre
        out["effect"] |= eff
        if pre and eff:
            out["action"] = True
            break
    return out


def _bijections(pred: Action, gold: Action):
    """Type-preserving maps from the predicted parameters onto the gold ones."""
    by_type: dict[str, tuple[list[str], list[str]]] = collections.defaultdict(lambda: ([], []))
    for var, kind in pred.parameters:
        by_type[kind][0].append(var)
    for var, kind in gold.parameters:
        by_type[kind][1].append(var)
    groups = list(by_type.values())
    for choice in itertools.product(*(itertools.permutations(g) for _, g in groups)):
        yield {
            p: g
            for (preds, _), perm in zip(groups, choice, strict=True)
            for p, g in zip(preds, perm, strict=True)
        }


def score_domain(case: DomainCase, actions: str, timeout: float) -> dict[str, Any]:
    """The prediction row of one domain: the predicted actions, what the metrics need from the
    data, and the planner's outcome for each problem (recorded; ``metrics`` re-checks plans)."""
    domain_text = assemble(case.header, actions)
    try:
        domain = parse_domain(domain_text, f"{case.domain_id} predicted domain")
        parse_error = ""
    except PDDLParseError as error:
        domain, parse_error = None, str(error)
    problems = []
    for problem in case.problems:
        gold = read_plan(problem.gold_plan) if problem.gold_plan is not None else None
        record: dict[str, Any] = {
            "problem": problem.name,
            "text": problem.text,
            "gold_plan": [format_step(*s) for s in gold] if gold is not None else None,
            "plan": None,
            "expanded": 0,
        }
        if gold is None:
            record["status"] = "skipped"  # no gold plan: the reference evaluation skips it
        elif domain is None:
            record["status"] = "parse_error"
        else:
            try:
                parsed = parse_problem(problem.text, domain, problem.name)
            except PDDLParseError:
                record["status"] = "parse_error"  # e.g. the prediction renamed the domain
            else:
                found = solve(domain, parsed, timeout=timeout)
                record["status"] = found.status
                record["expanded"] = found.expanded
                if found.plan is not None:
                    record["plan"] = [format_step(*s) for s in found.plan]
        problems.append(record)
    return {
        "domain_id": case.domain_id,
        "header": case.header,
        "action_names": case.action_names,
        "gold_domain": case.gold_domain,
        "actions": actions,
        "parse_error": parse_error,
        "problems": problems,
    }


def _plan_matches(plan: list[str], gold: list[str]) -> bool:
    """Same length, and step by step the same action with the same arguments in any order
    (the reference compares argument multisets: a predicted action may order its parameters
    differently)."""
    a, b = read_plan("\n".join(plan)) or [], read_plan("\n".join(gold)) or []
    return len(a) == len(b) and all(
        x[0] == y[0] and collections.Counter(x[1]) == collections.Counter(y[1])
        for x, y in zip(a, b, strict=True)
    )


def metrics(rows: list[dict], spec: dict[str, Any]) -> dict[str, float]:
    """Every metric from prediction rows alone (deterministic, no search).

    Parse status, coverage and action accuracy are recomputed from the texts. Planner outcomes
    are the recorded ones (a rerun of a search near its time limit may end differently), but a
    recorded plan counts as solved only if it replays to the goal on the predicted domain.
    """
    if not rows:
        raise ValueError("no predictions to score")
    intrinsic = collections.Counter()
    names = found = 0
    acc = collections.Counter()
    outcomes = collections.Counter()
    exact = 0
    for row in rows:
        try:
            domain = parse_domain(assemble(row["header"], row["actions"]), row["domain_id"])
        except PDDLParseError:
            domain = None
        hits = covered(row["actions"], row["action_names"])
        names += len(row["action_names"])
        found += len(hits)
        if domain is None:
            intrinsic["parse_error"] += 1
        elif len(hits) < len(row["action_names"]):
            intrinsic["action_incomplete"] += 1
        else:
            intrinsic["pass"] += 1
        gold_actions = parse_domain(row["gold_domain"], f"{row['domain_id']} gold").actions
        predicted = action_blocks(row["actions"])
        for gold in gold_actions:
            acc["gold"] += 1
            if gold.name in predicted:
                same = same_up_to_renaming(predicted[gold.name], gold)
                acc.update(k for k, v in same.items() if v)
        for record in row["problems"]:
            if record["gold_plan"] is None:
                continue
            status = record["status"]
            if status == "solved" and not _replays(domain, record):
                status = "invalid_plan"
            outcomes[status] += 1
            if status == "solved" and _plan_matches(record["plan"], record["gold_plan"]):
                exact += 1
    n_dom, n_prob = len(rows), sum(outcomes.values())

    def rate(count: int, total: int) -> float:
        return count / total if total else 0.0

    return {
        "solve_rate": rate(outcomes["solved"], n_prob),
        "plan_exact_match": rate(exact, n_prob),
        "unsolvable_rate": rate(outcomes["unsolvable"], n_prob),
        "timeout_rate": rate(outcomes["timeout"], n_prob),
        "problem_parse_error_rate": rate(outcomes["parse_error"], n_prob),
        "invalid_plan_rate": rate(outcomes["invalid_plan"], n_prob),
        "parse_rate": rate(n_dom - intrinsic["parse_error"], n_dom),
        "intrinsic_pass": rate(intrinsic["pass"], n_dom),
        "intrinsic_parse_error": rate(intrinsic["parse_error"], n_dom),
        "intrinsic_action_incomplete": rate(intrinsic["action_incomplete"], n_dom),
        "action_coverage": rate(found, names),
        "action_accuracy": rate(acc["action"], acc["gold"]),
        "precondition_accuracy": rate(acc["precondition"], acc["gold"]),
        "effect_accuracy": rate(acc["effect"], acc["gold"]),
        "domains": float(n_dom),
        "problems": float(n_prob),
    }


def _replays(domain, record: dict) -> bool:
    """A recorded plan is genuine: it parses, and replays to the goal on ``domain``."""
    if domain is None or record["plan"] is None:
        return False
    try:
        problem = parse_problem(record["text"], domain, record["problem"])
        plan = read_plan("\n".join(record["plan"])) or []
    except (PDDLParseError, ValueError):
        return False
    return validate_plan(domain, problem, plan) == ""
