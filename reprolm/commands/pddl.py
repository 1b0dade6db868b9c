"""``reprolm pddl``: solve a PDDL problem with the breadth-first planner of the Proc2PDDL task.

``reprolm pddl solve DOMAIN PROBLEM [--timeout S]`` prints the plan, one grounded action per
line as in the benchmark's gold plan files (``go ('east', 'person', 'beach', 'jungle')``), and
exits 0; otherwise it exits 1 with ``unsolvable`` or ``timeout``, or 2 with ``parse error:
<where>: <what>``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from reprolm.commands import add_command, emit

EXIT_NO_PLAN = 1
EXIT_BAD_INPUT = 2


def cmd_solve(args: argparse.Namespace) -> int:
    from evals.pddl import PDDLParseError, format_step, parse_domain, parse_problem, solve

    if args.timeout <= 0:
        print("reprolm pddl: --timeout must be > 0 seconds", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        domain = parse_domain(_read(args.domain), str(args.domain))
        problem = parse_problem(_read(args.problem), domain, str(args.problem))
    except PDDLParseError as error:
        print(f"parse error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    result = solve(domain, problem, timeout=args.timeout)
    lines = [format_step(name, params) for name, params in result.plan or ()]
    doc = {
        "status": result.status,
        "plan": lines,
        "expanded": result.expanded,
        "ground_actions": result.ground_actions,
        "seconds": result.seconds,
    }
    if result.status != "solved":
        message = result.status
        if result.status == "timeout":
            message += f" (no plan within {args.timeout:g} s)"
        if args.json:
            emit(doc, True, "")
        print(message, file=sys.stderr)
        return EXIT_NO_PLAN
    emit(doc, args.json, "\n".join(lines))
    return 0


def _read(path: Path) -> str:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such PDDL file")
    return path.read_text(encoding="utf-8")


def register(commands: Any) -> None:
    group = commands.add_parser("pddl", help="PDDL tools (Proc2PDDL): breadth-first planner")
    sub = group.add_subparsers(dest="pddl_command", required=True)
    solve = add_command(sub, "solve", cmd_solve, "print a plan (BFS over grounded actions)")
    solve.add_argument("domain", type=Path, help="domain.pddl")
    solve.add_argument("problem", type=Path, help="problem .pddl")
    solve.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
