"""The Proc2PDDL dataset directory (the upstream layout) and its digest.

``DIR/pddl_data/<domain id>/`` holds ``domain_header.pddl``, ``actions.txt``, the gold
``domain.pddl``, ``problems/*.pddl`` and the procedural text ``wikihow-*.txt``; the gold plans
are ``DIR/gold_plans/<id>_<problem>.txt`` (this project's sample) or
``DIR/pddl_evaluation/plan/gold/`` (a checkout of zharry29/proc2pddl). ``DIR`` may also be the
``pddl_data`` folder itself with the gold plans beside it. Every domain folder found is read (the
release has 27), in id order; a folder with some but not all of the domain files is refused.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from reprolm.canonical import canonical_json
from reprolm.hashing import hash_bytes, hash_file

_ACTION_NAME = re.compile(r"\(:action\s+([^\s;()]+)", re.IGNORECASE)
GOLD_PLAN_DIRS = ("gold_plans", "pddl_evaluation/plan/gold")


@dataclass(frozen=True)
class ProblemCase:
    name: str  # file stem, e.g. problem-start_fire
    text: str
    gold_plan: str | None  # the gold plan file's text; None when there is no file


@dataclass(frozen=True)
class DomainCase:
    domain_id: str
    header: str
    actions_txt: str
    gold_domain: str
    text: str  # the procedural (wikiHow) text; "" when absent
    problems: tuple[ProblemCase, ...]

    @property
    def action_names(self) -> list[str]:
        return [name.lower() for name in _ACTION_NAME.findall(self.actions_txt)]


def _roots(data: Path) -> tuple[Path, Path]:
    """(pddl_data dir, gold plans dir) of a dataset directory; clear errors otherwise."""
    if not data.is_dir():
        raise ValueError(f"{data}: the Proc2PDDL data is a directory (with pddl_data/ inside)")
    domains = data / "pddl_data" if (data / "pddl_data").is_dir() else data
    for base in (data, data.parent):
        for sub in GOLD_PLAN_DIRS:
            if (base / sub).is_dir():
                return domains, base / sub
    raise ValueError(
        f"{data}: no gold plans found (looked for {' or '.join(GOLD_PLAN_DIRS)} here and in "
        "its parent); they decide which problems count and the exact-match reference"
    )


def load(data: Path) -> tuple[list[DomainCase], str]:
    """Every domain of the dataset, in id order, and the digest of the files read."""
    domains_dir, plans_dir = _roots(data)
    files: dict[str, str] = {}

    def read(path: Path) -> str:
        files[Path(os.path.relpath(path, data)).as_posix()] = hash_file(path)
        return path.read_text(encoding="utf-8")

    cases = []
    for folder in sorted(p for p in domains_dir.iterdir() if p.is_dir()):
        needed = [folder / n for n in ("domain_header.pddl", "actions.txt", "domain.pddl")]
        missing = [p.name for p in needed if not p.is_file()]
        if len(missing) == len(needed):
            continue  # not a domain folder (e.g. a cache)
        if missing:
            raise ValueError(
                f"{folder}: domain folder {folder.name} lacks {', '.join(missing)} (each domain "
                "of pddl_data/ holds domain_header.pddl, actions.txt, domain.pddl, problems/)"
            )
        texts = sorted(folder.glob("wikihow-*.txt"))
        problems = []
        for path in sorted((folder / "problems").glob("*.pddl")):
            plan = plans_dir / f"{folder.name}_{path.stem}.txt"
            gold = read(plan) if plan.is_file() else None
            problems.append(ProblemCase(path.stem, read(path), gold))
        cases.append(
            DomainCase(
                domain_id=folder.name,
                header=read(needed[0]),
                actions_txt=read(needed[1]),
                gold_domain=read(needed[2]),
                text=read(texts[0]).strip() if texts else "",
                problems=tuple(problems),
            )
        )
    if not cases:
        raise ValueError(
            f"{domains_dir}: no domain folders (each needs domain_header.pddl, actions.txt, "
            "domain.pddl and problems/)"
        )
    return cases, hash_bytes(canonical_json(files).encode("utf-8"))
