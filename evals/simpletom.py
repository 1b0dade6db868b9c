"""SimpleToM (Gu et al., 2024): mental state (``aware``), behavior (``action``) and judgment
(``judge``) questions on short stories; accuracy per question type and the invalid-answer share.

Prompt and answer parsing are ports of the upstream inference code (yulinggu-cs/SimpleToM,
``inference/utils.py``: ``question_prompt``, ``make_mcq``, ``process_answer``; the CoT
instruction from ``inference/prompts.py``), checked byte for byte against the prompts recorded
in its sample outputs. The two interventions of the paper are task variants:

* ``simpletom::remind`` — two passes: the model first answers the story's mental-state
  question; the behavior/judgment prompt then carries that question with the model's own answer
  (upstream ``question_prompt(extra_question=...)``, filled with the model's answer).
* ``simpletom:cot::tom`` — a ToM-specific CoT instruction. Its wording is not in the upstream
  code: it is written for this project from the paper's description (think about what the
  person is aware of, then answer) and versioned here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from evals.families import Family, RunOptions
from evals.rowschema import require
from evals.spec import TaskSpec

SYSTEM = "You are a helpful assistant."  # upstream run_inference.py
LABELS = ("A", "B", "C", "D")
TYPES = ("aware", "action", "judge")
SUBSETS = {"mental-state-qa": "aware", "behavior-qa": "action", "judgment-qa": "judge"}
PLAIN_FINAL = "Respond with just"
COT_FINAL = (  # upstream inference/prompts.py COT_PROMPT (its trailing space is kept)
    "Think step by step to arrive at an answer. Start your response by explaining your "
    'reasoning process and end your response with "Therefore, the answer is: " followed by '
)
TOM_COT_FINAL = (  # written for this project from the paper's description (not upstream text)
    "Think step by step to arrive at an answer. First consider what the person in the story "
    "is aware of and whether they could know the key information in the story; then use that "
    "mental state to predict or judge their behavior. End your response with "
    '"Therefore, the answer is: " followed by '
)
# prompt_format -> (final instruction, CoT parsing, reminder pass, default max_gen_toks (upstream))
VARIANTS: dict[str, tuple[str, bool, bool, int]] = {
    "simpletom_plain": (PLAIN_FINAL, False, False, 20),
    "simpletom_cot": (COT_FINAL, True, False, 500),
    "simpletom_remind": (PLAIN_FINAL, False, True, 20),
    "simpletom_tom_cot": (TOM_COT_FINAL, True, False, 500),
}
PARSE_PLAIN = "first_choice_after_removing_answer"
PARSE_COT = "first_choice_after_the_answer_is"


def _spec(task_id: str, fmt: str, parse: str) -> TaskSpec:
    return TaskSpec(
        task_id=task_id,
        dataset="allenai/SimpleToM:mental-state-qa+behavior-qa+judgment-qa",
        split="test",
        fewshot=None,
        prompt_format=fmt,
        normalizations=(parse,),
        primary_metric="acc",
        version=1,
        sample_threshold=10**9,  # the paper scores every item (no OLMES sampling)
    )


SPECS = [
    _spec("simpletom::paper", "simpletom_plain", PARSE_PLAIN),
    _spec("simpletom:cot::paper", "simpletom_cot", PARSE_COT),
    _spec("simpletom::remind", "simpletom_remind", PARSE_PLAIN),
    _spec("simpletom:cot::tom", "simpletom_tom_cot", PARSE_COT),
]


# --- prompt -----------------------------------------------------------------------------------


def make_mcq(question: str, choices: list[str]) -> str:
    """Upstream ``make_mcq``: the question, then ``(A) text`` lines joined by ``" \\n"``."""
    text = " \n".join(f"({label}) {choice}" for label, choice in zip(LABELS, choices, strict=False))
    return f"{question} \n{text}"


def prompt(item: dict, final: str, reminder: dict | None = None) -> str:
    """Upstream ``question_prompt``; ``reminder`` = ``{question, choices, answer}`` is the
    earlier question shown with its answer (the mental-state reminder intervention)."""
    choices = item["choices"]["text"]
    labels = " or ".join(f"({x})" for x in LABELS[: len(choices)])
    quoted = re.sub(r"(\(.\))", r'"\1"', labels)
    extra = ""
    if reminder is not None:
        mcq = make_mcq(reminder["question"], reminder["choices"])
        extra = f"\nQuestion: {mcq}\nAnswer: ({reminder['answer']})\n"
    return (
        "Given the following story, answer the question by giving the correct answer choice, "
        f"{labels}.\n\nStory:\n{item['story']}\n{extra}\nQuestion: "
        f"{make_mcq(item['question'], choices)}\n\nWhat is the correct answer? {final} {quoted}\n"
    )


# --- parsing and metrics ----------------------------------------------------------------------


def parse_answer(text: str, cot: bool) -> str:
    """Upstream ``process_answer``: drop everything up to the last "the answer is" (CoT) or
    every "answer:" (plain); then the first of "(A)".."(D)" in label order; else a unique "(A"..;
    else a unique bare letter. Returns the label, or the stripped text when none is found."""
    prefix = ".*the answer is" if cot else "answer"
    text = re.sub(f"(?ims){prefix}:?", "", text).strip()
    for label in LABELS:
        if f"({label})" in text:
            return label
    for pattern in ("({}", "{}"):
        found: str | None = None
        for label in LABELS:
            if pattern.format(label) in text:
                found = label if found is None else ""  # "" = ambiguous: invalid
        if found is not None:
            return found or text
    return text


def question_type(row: dict, where: str) -> str:
    """``aware``/``action``/``judge`` from the id suffix (as upstream), else the ``subset``."""
    for qtype in TYPES:
        if str(row.get("id", "")).endswith(qtype):
            return qtype
    if row.get("subset") in SUBSETS:
        return SUBSETS[row["subset"]]
    raise ValueError(
        f"{where}: cannot tell the question type: the id must end in _aware/_action/_judge or "
        f"'subset' be one of {', '.join(SUBSETS)}"
    )


def story_key(item_id: str) -> str:
    """The story an item belongs to: its id without the question-type suffix."""
    return item_id.rsplit("_", 1)[0]


def rescore(row: dict, cot: bool) -> dict:
    """A row with ``predicted``, ``valid`` and ``correct`` (re)derived from its response."""
    predicted = parse_answer(row["response"], cot)
    valid = predicted in row["labels"]
    return {**row, "predicted": predicted, "valid": valid, "correct": predicted == row["gold"]}


def metrics(rows: list[dict]) -> dict[str, float]:
    """``acc`` over all rows, ``acc_<type>`` and ``invalid_frac[_<type>]`` per type present."""
    if not rows:
        raise ValueError("no SimpleToM predictions to score")
    out = {
        "acc": sum(r["correct"] for r in rows) / len(rows),
        "invalid_frac": sum(not r["valid"] for r in rows) / len(rows),
    }
    for qtype in TYPES:
        subset = [r for r in rows if r["qtype"] == qtype]
        if subset:
            out[f"acc_{qtype}"] = sum(r["correct"] for r in subset) / len(subset)
            out[f"invalid_frac_{qtype}"] = sum(not r["valid"] for r in subset) / len(subset)
    return out


def recompute_metrics(rows: list[dict], spec: dict[str, Any]) -> dict[str, float]:
    """Metrics from saved rows: only response, gold, labels and qtype are read."""
    cot = spec["normalizations"][0] == PARSE_COT
    keep = ("response", "gold", "labels", "qtype")
    return metrics([rescore({k: r[k] for k in keep}, cot) for r in rows])


# --- data -------------------------------------------------------------------------------------


def load_items(path: Path) -> list[dict]:
    """SimpleToM items from any released form of the HF dataset allenai/SimpleToM: a JSONL or
    Parquet file (one config, or all with a ``subset`` column), a ``save_to_disk`` folder (split
    ``test``), or a folder of the three configs (``mental-state-qa``, ``behavior-qa``,
    ``judgment-qa``: each a sub-folder of Parquet/JSONL files as on the hub, a ``save_to_disk``
    folder, or ``<config>.jsonl`` / ``<config>.parquet``), read in that order with ``subset``
    filled from the config name. Every source is checked (file and row named)."""
    from evals import sources

    path = Path(path)
    if path.is_file() or sources.is_hf_disk(path):
        rows = sources.read_rows(path, split="test")
        check_items(path, rows)
        return rows
    if not path.is_dir():
        raise ValueError(f"{path}: no such SimpleToM file or folder")
    items: list[dict] = []
    for subset in SUBSETS:
        found = [path / f"{subset}{ext}" for ext in (".jsonl", ".parquet")]
        folder = path / subset
        if folder.is_dir():
            found += [folder] if sources.is_hf_disk(folder) else sorted(
                p for p in folder.rglob("*") if p.suffix in (".jsonl", ".parquet")
            )  # fmt: skip
        for source in (p for p in found if p.exists()):
            rows = [{"subset": subset, **row} for row in sources.read_rows(source, split="test")]
            check_items(source, rows)
            items += rows
    if not items:
        raise ValueError(
            f"{path}: no SimpleToM data: give a JSONL/Parquet file, a save_to_disk folder, or a "
            f"folder holding the configs {', '.join(SUBSETS)} (sub-folders or <config>.jsonl)"
        )
    return items


def check_items(path: Path, rows: list[dict]) -> None:
    """Each item needs the HF SimpleToM fields; the error names the file and line."""
    for number, row in enumerate(rows, 1):
        where = f"{path}:{number}"
        require(row, ("id", "story", "question", "choices", "answerKey"), where,
                "SimpleToM item", "expected the HF allenai/SimpleToM schema: id, story, "
                "question, choices{text,label}, answerKey")  # fmt: skip
        question_type(row, where)


def _row(doc_id: int, index: int, item: dict, response: str, cot: bool, **extra: Any) -> dict:
    labels = list(item["choices"].get("label") or LABELS[: len(item["choices"]["text"])])
    base = {
        "doc_id": doc_id,
        "index": index,
        "id": item["id"],
        "qtype": question_type(item, item["id"]),
        "gold": item["answerKey"],
        "labels": labels,
        "response": response,
        **extra,
    }
    return rescore(base, cot)


# --- run on a model ---------------------------------------------------------------------------


def evaluate(
    spec: TaskSpec, model_dir: Path, data: Path, out_dir: Path, options: RunOptions
) -> dict[str, Any]:
    """Generate an answer per item through the engine (two passes for ``remind``); write
    requests, predictions and ``result.json``."""
    from evals import generative, lmeval

    final, cot, remind, default_toks = VARIANTS[generative.chat_format(spec)]
    items, resolved, indices, lm, generation, max_length = generative.prepare(
        spec, model_dir, data, options, default_toks, check_items, read=load_items
    )
    max_gen_toks = generation.max_gen_toks

    def generate(contexts: list[str]) -> list[str]:
        requests = [{"doc_id": i, "context": c} for i, c in enumerate(contexts)]
        out = lmeval.generate(
            lm, requests, until=[], max_gen_toks=max_gen_toks, seed=options.seed
        )  # no stop string: the model answers until EOS or the budget, as upstream
        return [out[i] for i in range(len(contexts))]

    def context(item: dict, reminder: dict | None = None) -> str:
        return generative.context(lm, spec, SYSTEM, prompt(item, final, reminder))

    request_log: list[dict] = []
    row_of = {row["id"]: i for i, row in enumerate(items)}  # item id -> its row in the data
    aware_out: dict[str, dict] = {}  # story key -> the model's mental-state answer
    first_pass: dict[str, str] = {}  # aware item id -> its prompt
    if remind:
        by_story = {story_key(r["id"]): r for r in items if question_type(r, r["id"]) == "aware"}
        needed = sorted({story_key(items[i]["id"]) for i in indices})
        missing = [k for k in needed if k not in by_story]
        if missing:
            raise ValueError(
                f"{data}: {spec.task_id} needs the mental-state item of each story; "
                f"no '<story>_aware' item for {', '.join(missing[:5])}"
            )
        contexts = [context(by_story[k]) for k in needed]
        for key, ctx, response in zip(needed, contexts, generate(contexts), strict=True):
            item = by_story[key]
            aware_out[key] = {
                "id": item["id"],
                "question": item["question"],
                "choices": list(item["choices"]["text"]),
                "response": response,
                "answer": parse_answer(response, cot),
            }
            request_log.append({"pass": 1, "index": row_of[item["id"]], "id": item["id"],
                                "context": ctx})  # fmt: skip
            first_pass[item["id"]] = ctx

    rows: list[dict] = []
    pending: list[tuple[int, int, dict, str, dict | None]] = []
    for doc_id, index in enumerate(indices):
        item = items[index]
        qtype = question_type(item, item["id"])
        reminder = aware_out.get(story_key(item["id"])) if remind else None
        if remind and qtype == "aware":  # the first pass already asked this very prompt
            tokens = generative.prompt_tokens(lm, first_pass[item["id"]])
            rows.append(_row(doc_id, index, item, reminder["response"], cot, prompt_tokens=tokens))
            continue
        ctx = context(item, reminder)
        request_log.append(
            {"pass": 2 if remind else 1, "index": index, "id": item["id"], "context": ctx}
        )
        pending.append((doc_id, index, item, ctx, reminder))
    responses = generate([p[3] for p in pending])
    for (doc_id, index, item, ctx, reminder), response in zip(pending, responses, strict=True):
        extra: dict[str, Any] = {"prompt_tokens": generative.prompt_tokens(lm, ctx)}
        if reminder is not None:
            extra["reminder"] = reminder
        rows.append(_row(doc_id, index, item, response, cot, **extra))
    rows.sort(key=lambda r: r["doc_id"])

    return generative.finish(
        spec, "simpletom", resolved, rows, options=options, generation=generation,
        max_length=max_length, system=SYSTEM, model_dir=model_dir, out_dir=out_dir,
        requests=request_log,
    )  # fmt: skip


# --- score outputs produced elsewhere ---------------------------------------------------------


def output_text(row: dict) -> str:
    """The response text of a prediction row: ``response``, or upstream's saved ``llm_output``
    (OpenAI responses / chat completions, Anthropic messages), as ``llm_output_text`` reads it."""
    if "response" in row:
        return str(row["response"])
    raw = row.get("llm_output")
    if isinstance(raw, dict):
        if "content" in raw:
            return raw["content"][0]["text"]
        if "output" in raw:
            return raw["output"][-1]["content"][0]["text"]
        if "choices" in raw:
            return raw["choices"][0]["message"]["content"]
    raise ValueError("needs 'response' (text) or upstream's 'llm_output'")


def score_file(
    spec: TaskSpec, predictions: Path, data: Path | None, out_dir: Path | None
) -> dict[str, Any]:
    """Score JSONL rows ``id`` + ``response`` (or upstream's output rows with ``llm_output``
    and ``correct``); gold and choice labels from ``data`` by id, else the row's own
    ``answerKey``/``correct``."""
    from evals import results, sources

    cot = spec.normalizations[0] == PARSE_COT
    data_rows = load_items(data) if data else []
    by_id = {r["id"]: r for r in data_rows}
    rows = []
    for number, pred in enumerate(sources.read_jsonl(predictions), 1):
        where = f"{predictions}:{number}"
        if "id" not in pred:
            raise ValueError(f"{where}: prediction row needs 'id'")
        try:
            text = output_text(pred)
        except (KeyError, IndexError, TypeError, ValueError) as error:
            raise ValueError(f"{where}: {error}") from None
        item = by_id.get(pred["id"])
        gold = item["answerKey"] if item else pred.get("answerKey", pred.get("correct"))
        if gold is None:
            raise ValueError(
                f"{where}: id {pred['id']!r} is not in --data and the row has no "
                "'answerKey'/'correct'"
            )
        source = item or {**pred, "choices": pred.get("choices", {"text": ["", ""]})}
        labels = list(source["choices"].get("label") or LABELS[: len(source["choices"]["text"])])
        base = {
            "doc_id": number - 1,
            "id": pred["id"],
            "qtype": question_type(source, where),
            "gold": gold,
            "labels": labels,
            "response": text,
        }
        rows.append(rescore(base, cot))
    return results.scored_result(
        spec, "simpletom", rows, predictions=predictions, data=data, data_rows=len(data_rows),
        out_dir=out_dir,
    )  # fmt: skip


def texts(data: Path) -> list[str]:
    """Each item's story and question (what the model is asked), in :func:`load_items` order."""
    items = load_items(data)
    return [f"{row['story']}\n{row['question']}" for row in items]


FAMILY = Family(
    kind="simpletom", metrics=recompute_metrics, evaluate=evaluate, score=score_file, texts=texts
)
