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


def require(row: dict, keys: Iterable[str], where: str, what: str, expected: str = "") -> None:
    """Refuse a row without one of ``keys``: ``<where>: <what> lacks <missing keys>
    (<expected>)`` (a family's own check of the rows it reads)."""
    missing = [k for k in keys if k not in row]
    if missing:
        raise ValueError(
            f"{where}: {what} lacks {', '.join(missing)}" + (f" ({expected})" if expected else "")
        )


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


def _int_in(row: dict, key: str, allowed: tuple, what: str) -> str | None:
    """``row[key]`` is one of ``allowed`` (as an int, or a string of one: "1")."""
    value = row[key]
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = None
    if isinstance(value, bool) or number not in allowed or isinstance(value, float):
        return f"{key!r} is {value!r}; expected {what}"
    return None


# OLMES multiple-choice schemas (HF releases) beyond ARC and HellaSwag, told apart by fields.
def _boolq(row: dict) -> str | None:
    problem = _text(row, "passage") or _text(row, "question")
    if problem:
        return problem + " (BoolQ rows: passage, question, label 0/1 or answer true/false)"
    if "label" in row:
        return _int_in(row, "label", (0, 1), "0 (no) or 1 (yes)")
    if not isinstance(row.get("answer"), bool):
        return f"'answer' is {row.get('answer')!r}; expected true or false (or a 0/1 'label')"
    return None


def _piqa(row: dict) -> str | None:
    problem = _text(row, "goal") or _text(row, "sol1") or _text(row, "sol2")
    problem = problem or _fields(row, "label")
    if problem:
        return problem + " (PIQA rows: goal, sol1, sol2, label 0/1)"
    return _int_in(row, "label", (0, 1), "0 (sol1) or 1 (sol2)")


def _socialiqa(row: dict) -> str | None:
    keys = ("context", "question", "answerA", "answerB", "answerC")
    problem = next((p for k in keys if (p := _text(row, k))), None) or _fields(row, "label")
    if problem:
        return problem + " (Social IQa rows: context, question, answerA-C, label 1-3)"
    return _int_in(row, "label", (1, 2, 3), "'1', '2' or '3' (answerA-C)")


def _winogrande(row: dict) -> str | None:
    problem = _text(row, "sentence") or _text(row, "option1") or _text(row, "option2")
    problem = problem or _fields(row, "answer")
    if problem:
        return problem + " (WinoGrande rows: sentence with one _, option1, option2, answer 1/2)"
    if row["sentence"].count("_") != 1:
        return f"'sentence' has {row['sentence'].count('_')} blanks '_'; expected exactly one"
    return _int_in(row, "answer", (1, 2), "'1' (option1) or '2' (option2)")


def _mmlu(row: dict) -> str | None:
    problem = _text(row, "question") or _text(row, "subject") or _fields(row, "answer")
    if problem:
        return problem + " (MMLU rows: question, subject, choices list, answer index)"
    choices = row["choices"]
    if not isinstance(choices, list) or len(choices) < 2:
        return "'choices' must list at least two answer texts"
    return _int_in(row, "answer", tuple(range(len(choices))), "the index of the right choice")


def _openbookqa(row: dict) -> str | None:
    problem = _text(row, "question_stem") or _fields(row, "choices", "answerKey")
    if problem:
        return problem + " (OpenBookQA rows: question_stem, choices{text, label}, answerKey)"
    return _choices(row)


MC_SCHEMAS: tuple[tuple[str, Callable[[dict], str | None]], ...] = (
    ("passage", _boolq),
    ("goal", _piqa),
    ("answerA", _socialiqa),
    ("sentence", _winogrande),
    ("question_stem", _openbookqa),
    ("subject", _mmlu),
)


def _multiple_choice(row: dict) -> str | None:
    for marker, check in MC_SCHEMAS:
        if marker in row:
            return check(row)
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
        return problem + (
            " (ARC / CommonsenseQA rows: question, choices{text, label}, answerKey; other "
            "OLMES tasks: see docs/evals/olmes.md)"
        )
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
    if "critiques" in row:  # a released DS_Critique_Bank row (evals.digital_socrates.from_dscb)
        problem = _fields(row, "question", "gold_answer", "student_answer", "student_explanation")
        if problem:
            return problem + (
                " (DS_Critique_Bank rows: question, gold_answer, student_answer, "
                "student_explanation, critiques)"
            )
        return None
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


def _minerva_math(row: dict) -> str | None:
    problem = _text(row, "problem") or _text(row, "solution")
    if problem:
        return problem + " (MATH rows: problem, solution, type or subject)"
    if not isinstance(row.get("type") or row.get("subject"), str):
        return "no 'type' (or 'subject') naming the MATH subject, e.g. 'Algebra'"
    if "\\boxed" not in row["solution"]:
        return "'solution' has no \\boxed{...} answer (MATH's gold); give the released solution"
    return None


def _bbh(row: dict) -> str | None:
    problem = _text(row, "subtask") or _text(row, "input") or _fields(row, "target")
    if problem:
        return problem + " (BBH rows: subtask, input, target; or a folder of <subtask>.json)"
    return None if isinstance(row["target"], str) else "'target' must be a string"


def _drop(row: dict) -> str | None:
    problem = _text(row, "passage") or _text(row, "question") or _fields(row, "answer")
    if problem:
        return problem + " (DROP rows: passage, question, answer{number, date, spans})"
    if not isinstance(row["answer"], dict):
        return "'answer' must be an object {number, date{day, month, year}, spans}"


def _mmlu(row: dict) -> str | None:
    problem = _text(row, "question") or _text(row, "subject") or _fields(row, "choices", "answer")
    if problem:
        return problem + " (MMLU rows: question, subject, choices, answer 0-3)"
    if not isinstance(row["choices"], list) or len(row["choices"]) != 4:
        return "'choices' must list the 4 answer options"
    if row["answer"] not in (0, 1, 2, 3) or isinstance(row["answer"], bool):
        return f"'answer' is {row['answer']!r}; expected the index 0-3 of the right choice"
    return None


def _popqa(row: dict) -> str | None:
    problem = _text(row, "question") or _fields(row, "obj", "prop_id", "possible_answers")
    if problem:
        return problem + " (PopQA rows: question, obj, prop_id, possible_answers, ...)"
    raw = row["possible_answers"]
    try:
        values = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        values = None
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        return "'possible_answers' must be a JSON list of answer strings (PopQA's format)"
    return None


def _truthfulqa(row: dict) -> str | None:
    problem = _text(row, "question") or _fields(row, "mc2_targets")
    if problem:
        return problem + " (truthful_qa multiple_choice rows: question, mc1/mc2_targets)"
    targets = row["mc2_targets"]
    choices = targets.get("choices") if isinstance(targets, dict) else None
    labels = targets.get("labels") if isinstance(targets, dict) else None
    if not isinstance(choices, list) or not isinstance(labels, list) or len(choices) != len(labels):
        return "'mc2_targets' must hold 'choices' and one 0/1 'labels' entry per choice"
    if set(labels) - {0, 1} or len(set(labels)) < 2:
        return "'mc2_targets.labels' must be 0/1 with at least one true and one false answer"
    return None


def _alpaca_eval(row: dict) -> str | None:
    problem = _text(row, "instruction")
    return problem + " (AlpacaEval rows: instruction, output = baseline, ...)" if problem else None


def _xstest(row: dict) -> str | None:
    problem = _text(row, "prompt") or _fields(row, "label")
    if problem:
        return problem + " (XSTest rows: id, prompt, type, label safe/unsafe, ...)"
    if row["label"] not in ("safe", "unsafe"):
        return f"'label' is {row['label']!r}; expected safe or unsafe"


def _humaneval(row: dict) -> str | None:
    for key in ("task_id", "prompt", "test", "entry_point"):
        if problem := _text(row, key):
            return (
                problem
                + " (HumanEval rows: task_id, prompt, canonical_solution, test, entry_point)"
            )
    if "def check(" not in row["test"]:
        return "'test' defines no check(candidate) function (HumanEval's test harness); fix it"
    return None


ROW_CHECKS: dict[str, Callable[[dict], str | None]] = {
    "drop": _drop,
    "bbh": _bbh,
    "minerva_math": _minerva_math,
    "codex_humaneval": _humaneval,
    "codex_humanevalplus": _humaneval,
    "gsm8k": _gsm8k,
    "ifeval": _ifeval,
    "multiple_choice": _multiple_choice,
    "simpletom": _simpletom,
    "ds_critique": _ds_critique,
    "complement_coercion": _coercion,
    "delta_rot": _delta_rot,
    "mmlu": _mmlu,
    "popqa": _popqa,
    "truthfulqa": _truthfulqa,
    "alpaca_eval_v2": _alpaca_eval,
    "xstest": _xstest,
}
# Directory datasets: the entries the family reads (one of each tuple must exist).
DIRECTORY_PARTS: dict[str, tuple[tuple[str, ...], ...]] = {
    "proc2pddl": (("pddl_data",), ("gold_plans",)),
    "delta_rot": (("items.jsonl", "items.tsv", "critic-gold-data.tsv", "d-rules-of-thumb.tsv"),),
}
# Released table / suite formats a family's own loader reads (the rows are checked by it).
TABLE_SUFFIXES = (".tsv", ".csv", ".json")
TABLE_LOADERS: dict[str, tuple[str, str]] = {
    "delta_rot": ("evals.delta_rot", "read_items"),  # the δ-RoT release TSVs
    "complement_coercion": ("evals.coercion", "read_stimuli"),  # SyntaxGym JSON, wide CSV/TSV
}


def check_table(path: Path, kinds: Iterable[str], shown: str) -> int:
    """Rows of a released TSV/CSV/JSON file, read by the family that knows its format (its
    errors name the file, line and column); refused for families that read JSONL only."""
    import importlib

    readers = [TABLE_LOADERS[k] for k in sorted(set(kinds)) if k in TABLE_LOADERS]
    others = sorted({k for k in kinds if k not in TABLE_LOADERS})
    if others or not readers:
        raise DatasetError(
            f"{shown}: a {path.suffix} file is read only by the δ-RoT and complement-coercion "
            f"specs; {', '.join(others) or 'these specs'} read JSONL (or Parquet): convert it"
        )
    count = 0
    for module, name in readers:
        try:
            count = len(getattr(importlib.import_module(module), name)(path))
        except ValueError as error:
            message = str(error) if shown in str(error) else f"{shown}: {error}"
            raise DatasetError(message) from None
    return count


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


def parquet_rows(path: Path) -> Iterable[tuple[int, dict | str]]:
    """``(row number, row)`` of a Parquet file (pyarrow is imported only here)."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as error:  # pyarrow raises several kinds for a damaged file
        yield 1, f"not a readable Parquet file ({error}); re-export the split"
        return
    yield from enumerate(table.to_pylist(), 1)


def check_file(path: Path, kinds: Iterable[str], shown: str | None = None) -> int:
    """The number of rows of a JSONL (or Parquet) dataset; DatasetError listing the first
    problems (a Parquet row is named by its 1-based row number)."""
    shown = shown or str(path)
    if path.suffix in TABLE_SUFFIXES:
        return check_table(path, kinds, shown)
    checks = [(k, ROW_CHECKS[k]) for k in sorted(set(kinds)) if k in ROW_CHECKS]
    problems, count, rows = [], 0, 0
    found_rows = parquet_rows(path) if path.suffix == ".parquet" else iter_rows(path, shown)
    for number, row in found_rows:
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
        if kind == "multiple_choice":
            check_saved_rows(path, [kind], shown)


HF_DISK_MARKERS = ("dataset_dict.json", "dataset_info.json", "state.json")  # = evals.sources


def check_saved_rows(path: Path, kinds: Iterable[str], shown: str) -> None:
    """Rows of a datasets ``save_to_disk`` folder (a Dataset, or each split of a DatasetDict),
    problems as ``<folder>[<split>]:<row>: ...``; a folder that is no such dataset is refused.
    ``datasets`` is imported only here (the plan imports this module with the standard library
    only)."""
    if not any((path / name).is_file() for name in HF_DISK_MARKERS):
        raise DatasetError(
            f"{shown}: a multiple-choice dataset folder must be a datasets save_to_disk folder "
            f"(no {' / '.join(HF_DISK_MARKERS)} inside); give a JSONL file or the saved folder"
        )
    from datasets import load_from_disk

    loaded = load_from_disk(str(path))
    splits = dict(loaded) if hasattr(loaded, "keys") else {"": loaded}
    checks = [(k, ROW_CHECKS[k]) for k in sorted(set(kinds)) if k in ROW_CHECKS]
    problems, count = [], 0
    for split, dataset in sorted(splits.items()):
        where = f"{shown}[{split}]" if split else shown
        for number, row in enumerate(dataset, 1):
            for kind, check in checks:
                problem = check(dict(row))
                if problem:
                    count += 1
                    if len(problems) < FIRST:
                        problems.append(f"{where}:{number}: {kind}: {problem}")
    if count > len(problems):
        problems.append(f"{shown}: ... and {count - len(problems)} more bad rows")
    if problems:
        raise DatasetError("\n".join(problems))


def check_dataset(path: Path, spec_ids: Iterable[str], shown: str | None = None) -> int | None:
    """Check a dataset (a JSONL file or a directory) against the specs reading it; the row
    count of a file (None for a directory)."""
    kinds = [kind_of_id(s) for s in spec_ids]
    if path.is_dir():
        check_directory(path, kinds, shown)
        return None
    return check_file(path, kinds, shown)
