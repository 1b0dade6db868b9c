"""Grounding, breadth-first search with a time limit, plan replay and the gold plan format.

Hand-written on purpose: the benchmark's gold plans are the *first* plans a plain breadth-first
search over grounded actions finds (the Proc2PDDL evaluator), so the grounding order (actions in
domain order, parameters as ``itertools.product`` over each type's objects, subtypes visited as
the reference does) and the successor order decide which of several shortest plans is the gold
one. No maintained planner exposes that search (pyperplan's BFS grounds differently and has no
time limit). States are bit sets over grounded facts, which keeps the search several times
faster than frozensets of tuples; ground actions that need a static fact absent from the initial
state are dropped (they are never applicable, so the search order is unchanged).
"""

from __future__ import annotations

import itertools
import re
import time
from collections import deque
from dataclasses import dataclass

from evals.pddl.parser import Action, Atom, Domain, Problem

Step = tuple[str, tuple[str, ...]]
_STEP = re.compile(r"^\s*([^\s(]+)\s*\((.*)\)\s*$")


@dataclass(frozen=True)
class PlanResult:
    """``status``: solved | unsolvable | timeout; ``plan`` when solved."""

    status: str
    plan: tuple[Step, ...] | None
    expanded: int
    ground_actions: int
    seconds: float


def objects_of(problem: Problem, domain: Domain, kind: str) -> list[str]:
    """Objects of ``kind`` and its subtypes, in the reference evaluator's order (a stack)."""
    stack, items = [kind], []
    while stack:
        current = stack.pop()
        items += problem.objects.get(current, [])
        stack += domain.types.get(current, [])
    return items


def _substitute(atoms: tuple[Atom, ...], binding: dict[str, str]) -> list[Atom]:
    return [tuple(binding.get(term, term) for term in atom) for atom in atoms]


class _Timeout(Exception):
    pass


def ground(domain: Domain, problem: Problem, deadline: float = float("inf")) -> list[tuple]:
    """``(action, args, pre_pos, pre_neg, add, delete)`` for every ground action that could
    ever apply, in the reference order (atoms as lists)."""
    fluent = {atom[0] for action in domain.actions for atom in action.add + action.delete}
    out = []
    for action in domain.actions:
        domains = [objects_of(problem, domain, kind) for _, kind in action.parameters]
        names = [var for var, _ in action.parameters]
        for count, args in enumerate(itertools.product(*domains)):
            if count % 4096 == 0 and time.monotonic() > deadline:
                raise _Timeout
            # the first parameter of a name wins, as in the reference
            binding = dict(reversed(list(zip(names, args, strict=True))))
            pre_pos = _substitute(action.pre_pos, binding)
            pre_neg = _substitute(action.pre_neg, binding)
            if any(a[0] not in fluent and a not in problem.init for a in pre_pos):
                continue
            if any(a[0] not in fluent and a in problem.init for a in pre_neg):
                continue
            add = _substitute(action.add, binding)
            delete = _substitute(action.delete, binding)
            out.append((action, tuple(args), pre_pos, pre_neg, add, delete))
    return out


def solve(domain: Domain, problem: Problem, timeout: float = 30.0) -> PlanResult:
    """Breadth-first search from the initial state; the first plan found (a shortest one)."""
    start = time.monotonic()
    deadline = start + timeout
    index: dict[Atom, int] = {}

    def mask(atoms) -> int:
        bits = 0
        for atom in atoms:
            bits |= 1 << index.setdefault(atom, len(index))
        return bits

    init = mask(problem.init)
    goal_pos, goal_neg = mask(problem.goal_pos), mask(problem.goal_neg)
    try:
        grounded = ground(domain, problem, deadline)
    except _Timeout:
        return PlanResult("timeout", None, 0, 0, time.monotonic() - start)
    acts = [(mask(pp), mask(pn), mask(ad), mask(de)) for _, _, pp, pn, ad, de in grounded]
    steps = [(action.name, args) for action, args, *_ in grounded]

    def result(status: str, plan: tuple[Step, ...] | None, expanded: int) -> PlanResult:
        return PlanResult(status, plan, expanded, len(acts), time.monotonic() - start)

    if init & goal_pos == goal_pos and not init & goal_neg:
        return result("solved", (), 0)
    # Successor generation only tries actions whose key fact (a precondition) holds; the
    # candidates are visited in ground-action order, so the search order is the plain BFS one.
    always, by_key = _buckets(acts)
    visited = {init}
    queue: deque[tuple[int, tuple | None]] = deque([(init, None)])
    expanded = 0
    while queue:
        state, node = queue.popleft()
        expanded += 1
        if expanded % 64 == 0 and time.monotonic() > deadline:
            return result("timeout", None, expanded)
        candidates = list(always)
        for bit, members in by_key:
            if state & bit:
                candidates += members
        candidates.sort()
        for i in candidates:
            pre_pos, pre_neg, add, delete = acts[i]
            if state & pre_pos != pre_pos or state & pre_neg:
                continue
            new = (state & ~delete) | add
            if new in visited:
                continue
            if new & goal_pos == goal_pos and not new & goal_neg:
                plan = [steps[i]]
                while node is not None:
                    i, node = node
                    plan.append(steps[i])
                return result("solved", tuple(reversed(plan)), expanded)
            visited.add(new)
            queue.append((new, (i, node)))
    return result("unsolvable", None, expanded)


def _buckets(acts: list[tuple[int, int, int, int]]) -> tuple[list[int], list[tuple[int, list]]]:
    """Ground actions without positive preconditions, and the others grouped by one of their
    positive precondition bits (the one shared by the fewest actions: the most selective)."""
    count: dict[int, int] = {}
    for pre_pos, *_ in acts:
        for bit in _bits(pre_pos):
            count[bit] = count.get(bit, 0) + 1
    always: list[int] = []
    groups: dict[int, list[int]] = {}
    for i, (pre_pos, *_) in enumerate(acts):
        if not pre_pos:
            always.append(i)
        else:
            key = min(_bits(pre_pos), key=lambda bit: (count[bit], bit))
            groups.setdefault(key, []).append(i)
    return always, sorted(groups.items())


def _bits(mask: int) -> list[int]:
    out = []
    while mask:
        low = mask & -mask
        out.append(low)
        mask ^= low
    return out


def validate_plan(domain: Domain, problem: Problem, plan: list[Step] | tuple[Step, ...]) -> str:
    """Replay ``plan`` from the initial state: ``""`` when every step applies (its arguments
    of the parameters' types, its preconditions true) and the goal holds at the end, else why
    not (naming the step)."""
    state = set(problem.init)
    for number, (name, args) in enumerate(plan, 1):
        action: Action | None = domain.action(name)
        if action is None:
            return f"step {number}: no action {name!r} in domain {domain.name}"
        if len(args) != len(action.parameters):
            return f"step {number} {name}: {len(args)} arguments, the action takes " + str(
                len(action.parameters)
            )
        for arg, (var, kind) in zip(args, action.parameters, strict=True):
            if arg not in objects_of(problem, domain, kind):
                return f"step {number} {name}: {arg!r} is not an object of type {kind} ({var})"
        binding = dict(reversed(list(zip([v for v, _ in action.parameters], args, strict=True))))
        missing = [a for a in _substitute(action.pre_pos, binding) if a not in state]
        present = [a for a in _substitute(action.pre_neg, binding) if a in state]
        if missing or present:
            return f"step {number} {format_step(name, args)}: precondition fails " + (
                f"(needs {missing[0]})" if missing else f"(needs not {present[0]})"
            )
        state -= set(_substitute(action.delete, binding))
        state |= set(_substitute(action.add, binding))
    unmet = [a for a in problem.goal_pos if a not in state]
    unmet += [("not", *a) for a in problem.goal_neg if a in state]
    return f"goal not reached: {unmet[0]} after {len(plan)} steps" if unmet else ""


def format_step(name: str, args: tuple[str, ...]) -> str:
    """One plan line as in the gold plan files: ``name ('a', 'b')``."""
    return f"{name} ('" + "', '".join(args) + "')"


def read_plan(text: str) -> list[Step] | None:
    """A gold plan file's steps; ``None`` when it records no plan ("Error: ...", "No
    solution")."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or lines[0].startswith(("Error", "No solution")):
        return None
    steps = []
    for number, line in enumerate(lines, 1):
        match = _STEP.match(line)
        if not match:
            raise ValueError(f"plan line {number}: {line!r} is not of the form name ('a', 'b')")
        steps.append((match.group(1).lower(), tuple(re.findall(r"'([^']*)'", match.group(2)))))
    return steps
