"""Row schemas of the evaluation datasets, checked when a dataset enters (plan and evaldata job).

A dataset is checked against the *kind* of every spec that reads it (``kind_of_id``, the same
rule as ``evals.families.kind_of``; tests/unit/test_rowschema.py checks they agree for every
registered spec). Problems name the user's file, the line and the field, and say how to fix it:
``<file>:<line>: not valid UTF-8 (byte offset N)``, ``<file>:<line>: not valid JSON (...)``,
``<file>:<line>: gsm8k: 'answer' has no '#### <number>' line ...``, ``<file>: empty ...``.
Standard library only: the plan imports this module, and the evaldata job's code digest stays
small (an edit to a metric never reruns evaldata, curate and everything after them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

FIRST = 10  # problems listed in full; the rest are counted
WORLD_REGIME = "tiny"
_GOLD = re.compile(r"####\s*(.+?)\s*$")


class DatasetError(ValueError):
    """A dataset's bytes or rows do not fit its specs (one problem per line, file:line first)."""


def kind_of_id(spec_id: str) -> str:
    """The result kind of a spec id (``evals.families.kind_of`` on the id alone)."""
    head, _, regime = spec_id.partition("::")
    task, _, fmt = head.partition(":")
    if regime == WORLD_REGIME:
        return "world"
    return "multiple_choice" if fmt in ("rc", "mc") else task


def _text(row: dict, key: str) -> str | None:
    value = row.get(key)
    if key not in row:
        return f"no field {key!r}"
    if not isinstance(value, str) or not value.strip():
        return f"{key!r} is {_what(value)}; expected a non-empty string"
    return None


def _what(value: Any) -> str:
    if isinstance(value, str):
        return "an empty string" if not value.strip() else "a string"
    return "null" if value is None else f"a JSON {type(value).__name__}"


def _fields(row: dict, *keys: str) -> str | None:
    missing = [k for k in keys if k not in row]
    return f"no field(s) {', '.join(map(repr, missing))}" if missing else None


def _gsm8k(row: dict) -> str | None:
    problem = _text(row, "question") or _text(row, "answer")
    if problem:
        return problem + " (GSM8K rows: question, answer ending in '#### <number>')"
    match = _GOLD.search(row["answer"].strip())
    if not match:
        return "'answer' has no '#### <number>' line (GSM8K's gold answer); add it"
    number = match.group(1).replace(",", "").rstrip(".")
    try:
        float(number)
    except ValueError:
        return f"'answer' ends in '#### {match.group(1)[:40]}', not a number; fix the gold answer"
    return None


def _ifeval(row: dict) -> str | None:
    problem = _fields(row, "key", "prompt", "instruction_id_list", "kwargs") or _text(row, "prompt")
    if problem:
        return problem + " (IFEval rows: key, prompt, instruction_id_list, kwargs)"
    ids, kwargs = row["instruction_id_list"], row["kwargs"]
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        return "'instruction_id_list' must be a non-empty list of instruction ids (strings)"
    if not isinstance(kwargs, list) or len(kwargs) != len(ids):
        return f"'kwargs' must be a list of {len(ids)} objects, one per instruction id"
    if not all(k is None or isinstance(k, dict) for k in kwargs):
        return "every 'kwargs' entry must be an object ({} when an instruction takes none)"
    return None


def _multiple_choice(row: dict) -> str | None:
    if "endings" in row or "ctx" in row:  # HellaSwag
        problem = _fields(row, "activity_label", "ctx_a", "ctx_b", "endings", "label")
        if problem:
            return problem + " (HellaSwag rows: activity_label, ctx_a, ctx_b, endings, label)"
        endings = row["endings"]
        if not isinstance(endings, list) or len(endings) < 2:
            return "'endings' must list at least two endings"
        try:
            label = int(row["label"])
        except (TypeError, ValueError):
            return f"'label' is {row['label']!r}; expected the index of the right ending"
        return None if 0 <= label < len(endings) else f"'label' {label} is no ending's index"
    problem = _text(row, "question") or _fields(row, "choices", "answerKey")
    if problem:
        return problem + " (ARC rows: question, choices{text, label}, answerKey)"
    return _choices(row)


def _choices(row: dict) -> str | None:
    choices = row["choices"]
    texts = choices.get("text") if isinstance(choices, dict) else None
    if not isinstance(texts, list) or len(texts) < 2:
        return "'choices' must be an object whose 'text' lists at least two answers"
    labels = choices.get("label")
    if labels is not None and (not isinstance(labels, list) or len(labels) != len(texts)):
        return "'choices.label' must list one label per 'choices.text' entry"
    if labels is not None and row["answerKey"] not in labels:
        return f"'answerKey' {row['answerKey']!r} is none of the labels {labels}"
    return None


def _simpletom(row: dict) -> str | None:
    problem = _fields(row, "id", "story", "question", "choices", "answerKey")
    if problem:
        return problem + " (SimpleToM rows: id, story, question, choices{text,label}, answerKey)"
    return _choices(row)


def _ds_critique(row: dict) -> str | None:
    problem = _fields(row, "question", "student_explanation", "predictedanswer", "answerkey")
    if problem:
        return problem + (
            " (Digital Socrates rows: question, student_explanation, predictedanswer, answerkey)"
        )
    return None


def _coercion(row: dict) -> str | None:
    problem = _fields(row, "item", "condition", "regions")
    if problem:
        return problem + " (stimulus rows: item, condition, regions[{name, text}])"
    regions = row["regions"]
    if not isinstance(regions, list) or len(regions) < 2:
        return "'regions' must list at least two {name, text} regions"
    if not all(isinstance(r, dict) and isinstance(r.get("text"), str) for r in regions):
        return "every region must be an object with a 'text' string"
    return None


def _delta_rot(row: dict) -> str | None:
    problem = _text(row, "action") or _fields(row, "update_type")
    return problem + " (δ-RoT items: action, update_type, ...)" if problem else None


ROW_CHECKS: dict[str, Callable[[dict], str | None]] = {
    "gsm8k": _gsm8k,
    "ifeval": _ifeval,
    "multiple_choice": _multiple_choice,
    "simpletom": _simpletom,
    "ds_critique": _ds_critique,
    "complement_coercion": _coercion,
    "delta_rot": _delta_rot,
}
# Directory datasets: the entries the family reads (one of each tuple must exist).
DIRECTORY_PARTS: dict[str, tuple[tuple[str, ...], ...]] = {
    "proc2pddl": (("pddl_data",), ("gold_plans",)),
    "delta_rot": (("items.jsonl", "items.tsv"),),
}


def iter_rows(path: Path, shown: str) -> Iterable[tuple[int, dict | str]]:
    """``(line, row)`` per non-blank line, or ``(line, problem)`` for a line that is no JSON
    object (invalid UTF-8, invalid JSON, another JSON value); ``shown`` names the file."""
    data = path.read_bytes()
    offset = 0
    lines = data.split(b"\n")
    for number, raw in enumerate(lines, 1):
        start, offset = offset, offset + len(raw) + 1
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            yield number, f"not valid UTF-8 (byte offset {start + error.start}); re-encode as UTF-8"
            continue
        if number == 1:
            text = text.removeprefix("\ufeff")
        try:
            row = json.loads(text)
        except json.JSONDecodeError as error:
            cut = number == len(lines) and not data.endswith(b"\n")
            hint = "the last line is cut off: the file looks truncated" if cut else "fix the line"
            yield number, f"not valid JSON ({error.msg}, column {error.colno}); {hint}"
            continue
        except RecursionError:
            yield number, "not valid JSON (nested too deeply)"
            continue
        if not isinstance(row, dict):
            yield number, f"a JSON {type(row).__name__}, not an object; one object per line"
            continue
        yield number, row


def check_file(path: Path, kinds: Iterable[str], shown: str | None = None) -> int:
    """The number of rows of a JSONL dataset; DatasetError listing the first problems."""
    shown = shown or str(path)
    checks = [(k, ROW_CHECKS[k]) for k in sorted(set(kinds)) if k in ROW_CHECKS]
    problems, count, rows = [], 0, 0
    for number, row in iter_rows(path, shown):
        found = [row] if isinstance(row, str) else []
        if not found:
            rows += 1
            found = [f"{kind}: {p}" for kind, check in checks if (p := check(row))]
        for problem in found:
            count += 1
            if len(problems) < FIRST:
                problems.append(f"{shown}:{number}: {problem}")
    if count > len(problems):
        problems.append(f"{shown}: ... and {count - len(problems)} more bad rows")
    if not problems and rows == 0:
        problems.append(f"{shown}: empty (no JSON rows); point the dataset at a file with rows")
    if problems:
        raise DatasetError("\n".join(problems))
    return rows


def check_directory(path: Path, kinds: Iterable[str], shown: str | None = None) -> None:
    """A directory dataset holds the parts its family reads (and is not empty)."""
    shown = shown or str(path)
    if not any(p.is_file() for p in path.rglob("*")):
        raise DatasetError(f"{shown}: an empty directory; point the dataset at the data folder")
    for kind in sorted(set(kinds)):
        for options in DIRECTORY_PARTS.get(kind, ()):
            if not any((path / name).exists() for name in options):
                raise DatasetError(
                    f"{shown}: no {' or '.join(options)} inside; a {kind} dataset directory "
                    f"holds {', '.join('/'.join(o) for o in DIRECTORY_PARTS[kind])}"
                )
        items = path / "items.jsonl"
        if kind == "delta_rot" and items.is_file():
            check_file(items, [kind], f"{shown.rstrip('/')}/items.jsonl")


def check_dataset(path: Path, spec_ids: Iterable[str], shown: str | None = None) -> int | None:
    """Check a dataset (a JSONL file or a directory) against the specs reading it; the row
    count of a file (None for a directory)."""
    kinds = [kind_of_id(s) for s in spec_ids]
    if path.is_dir():
        check_directory(path, kinds, shown)
        return None
    return check_file(path, kinds, shown)
