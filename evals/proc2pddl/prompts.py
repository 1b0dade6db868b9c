"""The Proc2PDDL prompts (upstream ``predict_scripts/prompts.json``), rendered as a chat.

``no_text``: the domain header's requirements, types and predicates + the action names with
their descriptions (``actions.txt``); ``with_text`` adds the whole procedural wikiHow text
(upstream ``instruction_no_text`` and ``instruction_text``).
"""

from __future__ import annotations

import re

from evals.proc2pddl.data import DomainCase

_INTRO = (
    "could you fill out ALL the pddl actions orderly with the predicates based on the text?\n"
    "All fields: parameters, precondition and effect, should have predicates.\n"
    "For each action, do NOT change the name and do NOT drop the action and do NOT add more "
    "actions.\nThe output should be in correct pddl format.\n\n"
)
TEMPLATES = {
    "no_text": _INTRO + "here are the actions I want to <goal>:\n<action_names>\n\n"
    "here are the requirements I have:\n<requirements>\n\n"
    "here are the types I have:\n<types>\n\n"
    "here are the predicates I have:\n<predicates>",
    "with_text": _INTRO + "here are the actions I want:\n<action_names>\n\n"
    "here are the requirements I have:\n<requirements>\n\n"
    "here are the types I have:\n<types>\n\n"
    "here are the predicates I have:\n<predicates>\n\n"
    "here are the texts containing steps to <goal>:\n<text>",
}
SYSTEM = "You are a helpful assistant."


def section(header: str, keyword: str) -> str:
    """The text of the header's ``(<keyword> ...)`` section, comments kept (they describe the
    predicates); "" when absent."""
    start = header.lower().find(f"({keyword}")
    if start < 0:
        return ""
    depth = 0
    for i in range(start, len(header)):
        line_start = header.rfind("\n", 0, i) + 1
        if ";" in header[line_start:i]:
            continue  # inside a comment
        if header[i] == "(":
            depth += 1
        elif header[i] == ")":
            depth -= 1
            if depth == 0:
                return header[start : i + 1]
    return header[start:]


def goal(header: str) -> str:
    """The task the domain models, from its name: ``survive_deserted_island`` -> words."""
    match = re.search(r"\(domain\s+([^\s()]+)", header, re.IGNORECASE)
    name = match.group(1) if match else ""
    return name.replace("how_to_", "").replace("_", " ").strip()


def user_prompt(case: DomainCase, variant: str, text: str | None = None) -> str:
    """The user turn; ``text`` overrides the procedural text (e.g. shortened to fit)."""
    fills = {
        "goal": goal(case.header),
        "action_names": case.actions_txt.strip(),
        "requirements": section(case.header, ":requirements"),
        "types": section(case.header, ":types"),
        "predicates": section(case.header, ":predicates"),
        "text": case.text if text is None else text,
    }
    prompt = TEMPLATES[variant]
    for key, value in fills.items():
        prompt = prompt.replace(f"<{key}>", value)
    return prompt


def messages(case: DomainCase, variant: str, text: str | None = None) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": user_prompt(case, variant, text)},
    ]
