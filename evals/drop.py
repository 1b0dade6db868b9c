r"""DROP (``drop::tulu``): Tulu 3's 3-shot DROP, F1 and EM as DROP's official metric computes
them.

Settings (OLMES ``oe_eval/configs/tasks.py`` ``drop::llama3``, the id the Tulu 3 suite runs):
the validation split, every instance, 3 shots, primary metric F1, no chat format (the config
sets no ``use_chat_format``), greedy. The prompt is plain text: per shot "Passage: <passage>\n
Question: <question>\nAnswer: <answer>", shots separated by a blank line, then the instance
ending in "Answer:"; generation stops at "Passage:" / "Question:" or after 50 tokens.

Deviation: ``drop::llama3`` draws its 3 shots from the train split with OLMES' seeded sampler;
this spec uses the first 3 of OLMES' curated DROP shots (``OLMES:drop``, bundled as
``olmes_drop_fewshot.jsonl``), so prompts are fixed and need no train split.

Metric (:func:`drop_metrics`, after the official ``drop_eval.py``): answers become bags of
normalized tokens (lower case; punctuation removed from non-numbers; numbers as floats;
articles removed; tokens split on spaces and hyphens); EM: the normalized span lists are equal
as sets of the same length; F1: predicted and gold spans are aligned one to one (maximum total
F1, numbers must agree where the gold span has any), the per-span F1 averaged over the larger
side and rounded to 2 decimals. A prediction is one span (the whole generation); an instance
scores the maximum EM and the maximum F1 over its gold answers (the answer and each validated
answer; empty golds skipped).
"""

from __future__ import annotations

import itertools
import re
import string
from pathlib import Path
from typing import Any

from evals.families import Family, RunOptions
from evals.spec import FewShotSet, TaskSpec

MAX_GEN_TOKS = 50
UNTIL = ("Passage:", "Question:")
SHOTS = FewShotSet("olmes_drop_fewshot.jsonl", 3, "OLMES:drop (first 3)")
SPECS = [
    TaskSpec(
        task_id="drop::tulu",  # OLMES drop::llama3
        dataset="EleutherAI/drop",
        split="validation",
        fewshot=SHOTS,
        prompt_format="drop_passage_question_answer_plain",
        normalizations=("drop_official",),
        primary_metric="f1",
        version=1,
        sample_threshold=10**9,  # every validation instance, as OLMES runs drop::llama3
    )
]

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _normalize_token(token: str) -> str:
    token = token.lower()
    if not _is_number(token):
        token = "".join(ch for ch in token if ch not in _PUNCTUATION)
    if _is_number(token):
        token = str(float(token))
    return " ".join(_ARTICLES.sub(" ", token).split())


def normalize(text: str) -> str:
    """DROP's normalization of one answer span."""
    parts = [_normalize_token(t) for t in re.split(" |-", text)]
    return " ".join(p for p in parts if p.strip()).strip()


def _bags(spans: tuple[str, ...] | list[str]) -> tuple[list[str], list[set[str]]]:
    normalized = [normalize(s) for s in spans]
    return normalized, [set(n.split()) for n in normalized]


def _f1(predicted: set[str], gold: set[str]) -> float:
    common = len(gold & predicted)
    precision = common / len(predicted) if predicted else 1.0
    recall = common / len(gold) if gold else 1.0
    return 0.0 if precision == 0 and recall == 0 else 2 * precision * recall / (precision + recall)


def _numbers_agree(gold: set[str], predicted: set[str]) -> bool:
    gold_numbers = {w for w in gold if _is_number(w)}
    return not gold_numbers or bool(gold_numbers & {w for w in predicted if _is_number(w)})


def _aligned_f1(predicted: list[set[str]], gold: list[set[str]]) -> float:
    """Mean over max(len) of the per-gold F1 under the best one-to-one alignment."""
    scores = [
        [_f1(p, g) if _numbers_agree(g, p) else 0.0 for p in predicted] for g in gold
    ]  # fmt: skip
    n_gold, n_pred = len(gold), len(predicted)
    best = 0.0
    if n_gold <= n_pred:
        for chosen in itertools.permutations(range(n_pred), n_gold):
            best = max(best, sum(scores[g][p] for g, p in enumerate(chosen)))
    else:
        for chosen in itertools.permutations(range(n_gold), n_pred):
            best = max(best, sum(scores[g][p] for p, g in enumerate(chosen)))
    return best / max(n_gold, n_pred)


def get_metrics(predicted: list[str], gold: tuple[str, ...]) -> tuple[float, float]:
    """(EM, F1) of predicted spans against one gold answer's spans (official ``get_metrics``)."""
    pred_spans, pred_bags = _bags(predicted)
    gold_spans, gold_bags = _bags(gold)
    em = float(set(pred_spans) == set(gold_spans) and len(pred_spans) == len(gold_spans))
    return em, round(_aligned_f1(pred_bags, gold_bags), 2)


def drop_metrics(prediction: str, golds: list[tuple[str, ...]]) -> dict[str, float]:
    """Max EM and max F1 over the gold answers of one instance (empty golds skipped)."""
    em = f1 = 0.0
    for gold in golds:
        if gold and gold[0].strip():
            e, f = get_metrics([prediction], gold)
            em, f1 = max(em, e), max(f1, f)
    return {"exact_match": em, "f1": f1}


def _answer_spans(answer: dict) -> tuple[str, ...]:
    """One released answer ``{number, date{day,month,year}, spans}`` as a tuple of spans."""
    if str(answer.get("number", "")).strip():
        return (str(answer["number"]),)
    if answer.get("spans"):
        return tuple(answer["spans"])
    date = answer.get("date") or {}
    return (" ".join(date.get(k, "") for k in ("day", "month", "year")).strip(),)


def gold_answers(row: dict) -> list[tuple[str, ...]]:
    """The answer and each validated answer (EleutherAI/drop schema), deduplicated in order."""
    candidates = [row["answer"]]
    validated = row.get("validated_answers") or {}
    for i in range(len(validated.get("number", []))):
        candidates.append(
            {
                "number": validated["number"][i],
                "date": validated["date"][i],
                "spans": validated["spans"][i],
            }
        )
    out: list[tuple[str, ...]] = []
    for candidate in candidates:
        spans = _answer_spans(candidate)
        if spans not in out:
            out.append(spans)
    return out


def block(row: dict, answer: str | None) -> str:
    text = f"Passage: {row['passage']}\nQuestion: {row['question']}\nAnswer:"
    return text if answer is None else f"{text} {answer}"


def prompt(row: dict, shots: list[dict]) -> str:
    """The plain-text 3-shot prompt; each shot answered with its first gold answer's spans."""
    parts = [block(s, ", ".join(gold_answers(s)[0])) for s in shots]
    return "\n\n".join([*parts, block(row, None)])


def check_rows(path: Path, rows: list[dict]) -> None:
    for number, row in enumerate(rows, 1):
        missing = [k for k in ("passage", "question", "answer") if k not in row]
        if missing or not isinstance(row["answer"], dict):
            raise ValueError(
                f"{path}: row {number}: DROP rows need 'passage', 'question' and an 'answer' "
                f"object {{number, date, spans}} (missing: {', '.join(missing) or 'answer'})"
            )


def rescore(row: dict) -> dict:
    golds = [tuple(g) for g in row["golds"]]
    return {**row, **drop_metrics(row["response"].strip(), golds)}


def metrics(records: list[dict]) -> dict[str, float]:
    if not records:
        raise ValueError("no predictions to score")
    n = len(records)
    return {k: sum(r[k] for r in records) / n for k in ("f1", "exact_match")}


def recompute_metrics(rows: list[dict], spec: dict[str, Any]) -> dict[str, float]:
    return metrics([rescore({k: r[k] for k in ("response", "golds")}) for r in rows])


def score_file(
    spec: TaskSpec, predictions: Path, data: Path | None, out_dir: Path | None
) -> dict[str, Any]:
    """Score JSONL ``query_id``/``response`` rows (golds from ``data`` or the row's own
    ``answer`` / ``validated_answers``)."""
    from evals import results, sources

    data_rows = sources.read_rows(data, spec.split) if data else []
    if data:
        check_rows(data, data_rows)
    rows = []
    for pred, source in results.with_sources(
        predictions, data_rows, "query_id", ("response",), lambda s: "answer" in s, "'answer'"
    ):
        golds = [list(g) for g in gold_answers(source)]
        rows.append(rescore({"query_id": pred.get("query_id"), "response": pred["response"],
                             "golds": golds}))  # fmt: skip
    return results.scored_result(
        spec, "drop", rows, predictions=predictions, data=data, data_rows=len(data_rows),
        out_dir=out_dir,
    )  # fmt: skip


def evaluate(
    spec: TaskSpec, model_dir: Path, data: Path, out_dir: Path, options: RunOptions
) -> dict[str, Any]:
    """Plain-text 3-shot prompts -> greedy generations -> DROP F1 / EM; writes the result."""
    from evals import generative, lmeval, sources
    from reprolm.canonical import canonical_json

    rows, resolved, indices = generative.start_rows(
        spec, data, options, check_rows, lambda path: sources.read_rows(path, spec.split)
    )
    shots = sources.read_jsonl(sources.bundled(spec.fewshot.file))[: spec.fewshot.n]
    lm = generative.load(Path(model_dir), options)
    max_length = int(lm.max_length)
    max_gen_toks, source = generative.budget(
        options.max_gen_toks, MAX_GEN_TOKS, max_length, spec.task_id
    )
    generation = generative.Generation(UNTIL, max_gen_toks, source)
    keep = max_length - max_gen_toks
    requests = []
    for doc_id, i in enumerate(indices):
        context = prompt(rows[i], shots)
        n = generative.prompt_tokens(lm, context)
        requests.append({"doc_id": doc_id, "index": i, "context": context, "prompt_tokens": n,
                         "truncated_tokens": max(0, n - keep)})  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / generative.REQUESTS).write_text(
        "".join(canonical_json(r) + "\n" for r in requests), encoding="utf-8"
    )
    texts = lmeval.generate(
        lm, [{"doc_id": r["doc_id"], "context": r["context"]} for r in requests],
        until=UNTIL, max_gen_toks=max_gen_toks, seed=options.seed,
    )  # fmt: skip
    records = [
        rescore(
            {
                "doc_id": r["doc_id"],
                "index": r["index"],
                "query_id": rows[r["index"]].get("query_id"),
                "response": texts[r["doc_id"]],
                "golds": [list(g) for g in gold_answers(rows[r["index"]])],
            }
        )
        for r in requests
    ]
    harness = generative.harness_block(
        options, generation=generation.to_dict(), max_length=max_length, chat=False,
        truncated_instances=sum(1 for r in requests if r["truncated_tokens"]),
    )  # fmt: skip
    return generative.write(
        spec, "drop", resolved, harness, model_dir, out_dir, options.limit, records,
        metrics(records),
    )  # fmt: skip


def texts(data: Path) -> list[str]:
    """Passage and question of each row (what decontamination matches training data against)."""
    from evals import sources

    return [f"{r['passage']} {r['question']}" for r in sources.read_rows(data, "validation")]


FAMILY = Family(
    kind="drop", metrics=recompute_metrics, evaluate=evaluate, score=score_file, texts=texts
)
