"""Digital Socrates (Gu et al., 2024): a model critiques a (question, student explanation,
predicted answer, answer key); the critique names the main flaw, its dimension, a general and a
specific suggestion, and scores the explanation 0-5. Compared with gold (human-verified)
critiques: dimension accuracy, Pearson correlation and mean absolute error of the explanation
score, and the share of well-formed critiques.

The critique *format* (the lines parsed below) is the one of the DS models' outputs shown in the
allenai/digital-socrates model card. The *instruction* that asks for it is written for this
project: the upstream template (``DSCB-prompts.json['digital_socrates_v1']``) is not available
offline here; only its system prompt and placeholders are known from the model card. The
dimension names listed in the instruction are this project's reading of the paper's taxonomy.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from evals.families import Family, RunOptions
from evals.rowschema import require
from evals.spec import TaskSpec

SYSTEM = "You are a helpful and rigorous tutor."  # DS model card (digital_socrates_v1 system)
DIMENSIONS = (
    "misunderstanding",
    "lack_justification",
    "incorrect_information",
    "incomplete_reasoning",
    "incorrect_reasoning",
    "inconsistent_answer",
    "irrelevant",
    "missing_explanation",
    "none",
)
INSTRUCTION = (  # written for this project (see the module docstring)
    "Critique the student's explanation of their answer to the multiple-choice question below. "
    "Identify the most significant flaw in the explanation (if any) as a standalone statement, "
    "name its dimension (one of: " + ", ".join(DIMENSIONS) + "), give a general and a specific "
    "suggestion for revising the explanation, and score the explanation from 0 (worst) to 5 "
    "(best).\n\n"
    "Question: [[QUESTION]]\n\n"
    "Answer sheet: ([[ANSWERKEY]])\n\n"
    "Student explanation:\n[[EXPLANATION]]\n\n"
    "Student answer: ([[PREDICTEDANSWER]])\n\n"
    "Answer in exactly this format:\n"
    "The explanation states or suggests the following:\n"
    '* Main flaw (standalone statement): "<the flawed statement>"\n'
    "* Dimension: <dimension>\n\n"
    "Consider these points for revising the explanation:\n"
    "* General: <general suggestion>\n"
    "* Specific: <specific suggestion>\n\n"
    "Explanation score: <0-5>"
)
FIELDS = ("question", "student_explanation", "predictedanswer", "answerkey")
DEFAULT_MAX_GEN_TOKS = 512  # the model card's max_new_tokens

SPECS = [
    TaskSpec(
        task_id="ds_critique::dscb",
        dataset="allenai/DS_Critique_Bank",
        split="test",
        fewshot=None,
        prompt_format="digital_socrates_critique_chat",
        normalizations=("dscb_critique_format",),
        primary_metric="dimension_acc",
        version=1,
        sample_threshold=10**9,  # score every given item
    )
]

# One field per bullet; a value runs to the end of its line (the DS format is line based).
_MAIN_FLAW = re.compile(r"^\s*\*?\s*Main flaw(?:\s*\([^)]*\))?\s*:[ \t]*(.*)$", re.I | re.M)
_DIMENSION = re.compile(r"^\s*\*?\s*Dimension\s*:[ \t]*(.*)$", re.I | re.M)
_GENERAL = re.compile(r"^\s*\*?\s*General\s*:[ \t]*(.*)$", re.I | re.M)
_SPECIFIC = re.compile(r"^\s*\*?\s*Specific\s*:[ \t]*(.*)$", re.I | re.M)
_SCORE = re.compile(r"^\s*Explanation score\s*:[ \t]*(\S*)", re.I | re.M)


def render(row: dict) -> str:
    """The instruction with the item's fields in place of the upstream placeholders."""
    text = INSTRUCTION
    for key, value in zip(
        ("[[QUESTION]]", "[[EXPLANATION]]", "[[PREDICTEDANSWER]]", "[[ANSWERKEY]]"),
        (row["question"], row["student_explanation"], row["predictedanswer"], row["answerkey"]),
        strict=True,
    ):
        text = text.replace(key, str(value))
    return text


def _field(pattern: re.Pattern, text: str) -> str | None:
    match = pattern.search(text)
    value = match.group(1).strip() if match else ""
    return value or None


def normalize_dimension(value: str | None) -> str | None:
    """``"Incorrect information"`` -> ``"incorrect_information"``."""
    if value is None:
        return None
    return re.sub(r"[\s-]+", "_", value.strip().strip("\"'`.").lower()) or None


def parse_critique(text: str) -> dict[str, Any]:
    """The five elements of a critique (None where missing) and ``well_formed``: every element
    present and the score an integer 0-5."""
    flaw = _field(_MAIN_FLAW, text)
    if flaw and len(flaw) >= 2 and flaw[0] == flaw[-1] == '"':
        flaw = flaw[1:-1].strip()
    raw_score = _field(_SCORE, text)
    score = int(raw_score) if raw_score and re.fullmatch(r"[0-5]", raw_score) else None
    elements = {
        "main_flaw": flaw,
        "dimension": normalize_dimension(_field(_DIMENSION, text)),
        "general_suggestion": _field(_GENERAL, text),
        "specific_suggestion": _field(_SPECIFIC, text),
        "explanation_score": score,
    }
    elements["well_formed"] = all(v is not None for v in elements.values())
    return elements


def gold_of(row: dict, where: str) -> dict[str, Any]:
    """Gold dimension and score: ``critique_elements``, else parsed from ``critique_text``."""
    if isinstance(row.get("critique_elements"), dict):
        elements = row["critique_elements"]
    elif isinstance(row.get("critique_text"), str):
        elements = parse_critique(row["critique_text"])
    else:
        raise ValueError(f"{where}: no gold critique ('critique_elements' or 'critique_text')")
    dimension = normalize_dimension(elements.get("dimension"))
    score = elements.get("explanation_score")
    if dimension is None or not isinstance(score, int) or not 0 <= score <= 5:
        raise ValueError(
            f"{where}: the gold critique needs a dimension and an integer explanation_score 0-5"
        )
    return {"gold_dimension": dimension, "gold_score": score}


# The released DS_Critique_Bank JSONL rows (allenai/DS_Critique_Bank dataset card): the fields
# read, and the critique element names that differ from the model card's.
DSCB_FIELDS = ("question", "gold_answer", "student_answer", "student_explanation", "critiques")
DSCB_ELEMENTS = {
    "general_feedback": "general_suggestion",
    "specific_feedback": "specific_suggestion",
}


def from_dscb(row: dict, where: str) -> dict:
    """A DSCB row as an item: ``student_answer`` -> ``predictedanswer``, ``gold_answer`` ->
    ``answerkey``, the gold critique = the row's first critique (its elements renamed to the
    model card's, a missing element parsed from its ``critique_text``; ``gold_critique_model``
    says whose it is)."""
    require(row, DSCB_FIELDS, where, "DSCB row",
            f"the released DS_Critique_Bank rows have {', '.join(DSCB_FIELDS)}")  # fmt: skip
    critiques = row["critiques"]
    first = critiques[0] if isinstance(critiques, list) and critiques else None
    if not isinstance(first, dict) or not (
        isinstance(first.get("critique_elements"), dict)
        or isinstance(first.get("critique_text"), str)
    ):
        raise ValueError(
            f"{where}: 'critiques' must list critiques, the first with 'critique_elements' or "
            "'critique_text' (the gold critique)"
        )
    elements = {
        DSCB_ELEMENTS.get(k, k): v for k, v in (first.get("critique_elements") or {}).items()
    }
    if isinstance(first.get("critique_text"), str):
        parsed = parse_critique(first["critique_text"])
        elements = {
            **{k: v for k, v in parsed.items() if v is not None and k != "well_formed"},
            **elements,
        }
    item = {
        "question": row["question"],
        "student_explanation": row["student_explanation"],
        "predictedanswer": row["student_answer"],
        "answerkey": row["gold_answer"],
        "critique_elements": elements,
        "gold_critique_model": first.get("critique_model"),
    }
    if "id" in row:
        item["id"] = row["id"]
    if isinstance(first.get("critique_text"), str):
        item["critique_text"] = first["critique_text"]
    return item


def load_items(path: Path) -> list[dict]:
    """Items of a JSONL file: rows in the model card's fields (:data:`FIELDS` + a gold
    critique), or released DS_Critique_Bank rows (``critiques`` list; :func:`from_dscb`)."""
    from evals import sources

    rows = sources.read_jsonl(path)
    return [
        from_dscb(row, f"{path}:{number}") if "critiques" in row else row
        for number, row in enumerate(rows, 1)
    ]


def check_items(path: Path, rows: list[dict], need_gold: bool = True) -> None:
    for number, row in enumerate(rows, 1):
        require(row, FIELDS, f"{path}:{number}", "Digital Socrates item",
                f"expected {', '.join(FIELDS)} and a gold 'critique_elements' or "
                "'critique_text'")  # fmt: skip
        if need_gold:
            gold_of(row, f"{path}:{number}")


def rescore(row: dict) -> dict:
    """A row with its parsed critique elements (re)derived from ``critique_text``."""
    return {**row, "parsed": parse_critique(row["critique_text"])}


def metrics(rows: list[dict]) -> dict[str, float]:
    """``well_formed``, ``dimension_acc`` (a missing dimension counts as wrong), over the rows
    with a parsed score ``score_mae``, ``scored_frac`` and ``score_pearson`` (omitted when
    undefined: fewer than two scores, or either side constant)."""
    if not rows:
        raise ValueError("no Digital Socrates predictions to score")
    n = len(rows)
    scored = [r for r in rows if r["parsed"]["explanation_score"] is not None]
    out = {
        "well_formed": sum(r["parsed"]["well_formed"] for r in rows) / n,
        "dimension_acc": sum(r["parsed"]["dimension"] == r["gold_dimension"] for r in rows) / n,
        "scored_frac": len(scored) / n,
    }
    if scored:
        pred = [float(r["parsed"]["explanation_score"]) for r in scored]
        gold = [float(r["gold_score"]) for r in scored]
        out["score_mae"] = sum(abs(p - g) for p, g in zip(pred, gold, strict=True)) / len(scored)
        if len(scored) >= 2 and len(set(pred)) > 1 and len(set(gold)) > 1:
            from scipy.stats import pearsonr

            out["score_pearson"] = float(pearsonr(pred, gold).statistic)
    return out


def recompute_metrics(rows: list[dict], spec: dict[str, Any]) -> dict[str, float]:
    """Metrics from saved rows: only the critique text and the gold are read."""
    keep = ("critique_text", "gold_dimension", "gold_score")
    return metrics([rescore({k: r[k] for k in keep}) for r in rows])


def evaluate(
    spec: TaskSpec, model_dir: Path, data: Path, out_dir: Path, options: RunOptions
) -> dict[str, Any]:
    """Generate a critique per item through the engine; write requests, predictions, result."""
    from evals import generative, lmeval

    items, resolved, indices, lm, generation, max_length = generative.prepare(
        spec, model_dir, data, options, DEFAULT_MAX_GEN_TOKS, check_items, read=load_items
    )
    max_gen_toks = generation.max_gen_toks
    requests = [
        {"doc_id": d, "index": i, "context": generative.context(lm, spec, SYSTEM, render(items[i]))}
        for d, i in enumerate(indices)
    ]
    generated = lmeval.generate(
        lm, [{"doc_id": r["doc_id"], "context": r["context"]} for r in requests],
        until=[], max_gen_toks=max_gen_toks, seed=options.seed,
    )  # fmt: skip
    rows = []
    for request in requests:
        where = f"{data}:{request['index'] + 1}"
        base = {
            "doc_id": request["doc_id"],
            "index": request["index"],
            "critique_text": generated[request["doc_id"]],
            "prompt_tokens": generative.prompt_tokens(lm, request["context"]),
            **gold_of(items[request["index"]], where),
        }
        rows.append(rescore(base))

    return generative.finish(
        spec, "ds_critique", resolved, rows, options=options, generation=generation,
        max_length=max_length, system=SYSTEM, model_dir=model_dir, out_dir=out_dir,
        requests=requests,
    )  # fmt: skip


def score_file(
    spec: TaskSpec, predictions: Path, data: Path | None, out_dir: Path | None
) -> dict[str, Any]:
    """Score JSONL critiques (``critique_text``, or ``response``) produced elsewhere: matched to
    ``data`` rows by ``id`` when both carry one, else by position (same number of rows)."""
    from evals import results, sources

    if data is None:
        raise ValueError("Digital Socrates scoring needs --data (the items with gold critiques)")
    items = load_items(data)
    check_items(data, items)
    preds = sources.read_jsonl(predictions)
    by_id = {r["id"]: (i, r) for i, r in enumerate(items) if "id" in r}
    if not all("id" in p and p["id"] in by_id for p in preds) and len(preds) != len(items):
        raise ValueError(
            f"{predictions}: {len(preds)} rows for {len(items)} items in {data}; give each row "
            "the 'id' of its item, or one row per item in the same order"
        )
    rows = []
    for number, pred in enumerate(preds, 1):
        text = pred.get("critique_text", pred.get("response"))
        if not isinstance(text, str):
            raise ValueError(f"{predictions}:{number}: needs 'critique_text' (or 'response')")
        index, item = (
            by_id[pred["id"]] if pred.get("id") in by_id else (number - 1, items[number - 1])
        )
        base = {
            "doc_id": number - 1,
            "index": index,
            "critique_text": text,
            **gold_of(item, f"{data}:{index + 1}"),
        }
        rows.append(rescore(base))
    return results.scored_result(
        spec, "ds_critique", rows, predictions=predictions, data=data, data_rows=len(items),
        out_dir=out_dir,
    )  # fmt: skip


def texts(data: Path) -> list[str]:
    """Each item's question and the student's explanation (what the critic model reads)."""
    items = load_items(data)
    check_items(data, items, need_gold=False)
    return [f"{row['question']}\n{row['student_explanation']}" for row in items]


FAMILY = Family(
    kind="ds_critique", metrics=recompute_metrics, evaluate=evaluate, score=score_file, texts=texts
)
