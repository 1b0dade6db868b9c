"""WorldValuesBench (Zhao et al., LREC-COLING 2024): (demographic attributes, value question) ->
the answer distribution of a demographic group, compared with the humans' by Wasserstein-1.

The survey answers may not be redistributed, so nothing is bundled: ``data`` is the user's own
copy of the released ``WorldValuesBench/`` folder, of which exactly these files are read:

* ``question_metadata.json`` — ``{id: {question, answer_scale_min, answer_scale_max, ...}}``
  (upstream also keeps it as ``dataset_construction/question_metadata.json``);
* ``probe/samples.tsv`` — the probe set: columns ``Question``, ``Continent``, ``Urban / Rural``,
  ``Education``, ``D_INTERVIEW`` (36 questions x 94 groups x 5 participants = 8,280 rows);
* ``full/full_demographic_qa.tsv`` — ``D_INTERVIEW`` + one text answer per demographic column;
* ``full/full_value_qa.tsv`` — ``D_INTERVIEW`` + one numeric answer per value question
  (without ``full/``: the ``test/``, ``valid/`` or ``train/`` split's two TSVs).

A split folder (``WorldValuesBench/test`` …) as ``data`` is read whole instead
(:func:`evals.worldvaluesbench.data.load_split`).

Two specs: ``worldvaluesbench::probe`` reads the model's distribution over the scale from the
log-likelihoods of the option texts (softmax over options) and ``worldvaluesbench:cot::probe``
samples N answers per participant in the paper's output format (explanation + score) and takes
their histogram. Answers are placed on [0, 1] at (k-1)/(K-1); per question (all its probe
participants pooled, as upstream ``evaluation/evaluate.py``) and per (question, group) the
model's mixture distribution is compared with the participants' answers by W1; the headline is
the share of questions with W1 < 0.2.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path
from typing import Any

from evals.families import Family, RunOptions
from evals.worldvaluesbench.data import (
    DEMOGRAPHICS,
    GROUP_COLUMNS,
    METADATA,
    SAMPLES,
    VALUES,
    Item,
    _participant,
    data_files,
    load,
    load_split,
)
from evals.worldvaluesbench.prompts import parse_score, render, user_prompt
from evals.worldvaluesbench.scoring import breakdown, distance, metrics, row_distribution
from evals.worldvaluesbench.spec import SPECS, WorldValuesSpec, resolve

__all__ = [
    "DEMOGRAPHICS", "FAMILY", "GROUP_COLUMNS", "METADATA", "REQUESTS", "SAMPLES", "SPECS", "VALUES",
    "Item", "WorldValuesSpec", "breakdown", "data_files", "distance", "evaluate", "load",
    "load_split", "metrics", "parse_score", "render", "resolve", "resolve_data", "row_distribution",
    "score_file", "user_prompt",
]  # fmt: skip

REQUESTS = "requests.jsonl"


# ---------------------------------------------------------------- running on a model


def _base_row(item: Item, doc_id: int) -> dict[str, Any]:
    return {
        "doc_id": doc_id,
        "index": item.index,
        "question_id": item.question_id,
        "participant": item.participant,
        "group": item.group,
        "scale": list(item.scale),
        "human": item.human,
    }


def evaluate(
    spec: WorldValuesSpec, model_dir: Path, data: Path, out_dir: Path, options: RunOptions
) -> dict[str, Any]:
    """Run a spec on a model; write requests, predictions and ``result.json``; return it."""
    from evals import lmeval, results, sources
    from evals.lmeval import model_digest, versions
    from reprolm.canonical import canonical_json

    items, digests = load(spec, data)
    resolved = resolve(spec, digests, len(items))
    items = items[: options.limit] if options.limit is not None else items
    lm = options.lm or lmeval.load_model(
        model_dir, options.batch_size, backend=options.backend, device=options.device
    )
    tokenizer = lmeval.tokenizer_of(lm)
    max_length = int(lm.max_length)
    requests, chat = [], False
    if spec.n_samples:
        gen_toks = options.max_gen_toks or spec.max_gen_toks
        for doc_id, item in enumerate(items):
            prompt, chat = render(tokenizer, user_prompt(item, explain=True))
            requests.append({**_base_row(item, doc_id), "context": prompt})
        # N copies of each prompt, sampled in one seeded lm-eval call.
        copies = [
            {"doc_id": k * len(requests) + r["doc_id"], "context": r["context"]}
            for k in range(spec.n_samples)
            for r in requests
        ]
        outputs = lmeval.generate(
            lm, copies, until=["}", "<|im_end|>"], max_gen_toks=gen_toks, seed=options.seed,
            do_sample=True, temperature=spec.temperature,
        )  # fmt: skip
        rows = [
            {
                **{k: v for k, v in r.items() if k != "context"},
                "samples": [
                    outputs[k * len(requests) + r["doc_id"]] for k in range(spec.n_samples)
                ],
            }
            for r in requests
        ]
        budget = max_length - gen_toks
        longest = [len(lm.tok_encode(r["context"])) for r in requests]
    else:
        gen_toks = None
        for doc_id, item in enumerate(items):
            prompt, chat = render(tokenizer, user_prompt(item, explain=False))
            lo, hi = item.scale
            conts = [f" {k}" for k in range(lo, hi + 1)]
            requests.append(
                {**_base_row(item, doc_id), "context": prompt + "Score:", "continuations": conts}
            )
        scored = lmeval.loglikelihoods(lm, requests, seed=options.seed)
        rows = []
        for r in requests:
            choices = scored[r["doc_id"]]
            if [c["continuation"] for c in choices] != r["continuations"]:
                raise RuntimeError(f"lm-eval scored other continuations for doc {r['doc_id']}")
            base = {k: v for k, v in r.items() if k not in ("context", "continuations")}
            rows.append({**base, "choices": [
                {"continuation": c["continuation"], "loglik": c["loglik"]} for c in choices
            ]})  # fmt: skip
        budget = max_length
        longest = [
            len(lm.tok_encode(r["context"]))
            + max(lmeval.n_tokens(lm, r["context"], c) for c in r["continuations"])
            for r in requests
        ]
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / REQUESTS).write_text("".join(canonical_json(r) + "\n" for r in requests), "utf-8")
    computed = metrics(rows, resolved)
    result = results.envelope(
        spec, "worldvaluesbench", resolved, computed, instances=len(rows),
        limit=options.limit,
        breakdown=breakdown(rows),
        model={"digest": model_digest(Path(model_dir)), "name": Path(model_dir).name},
        harness={
            "engine": "lm_eval.simple_evaluate",
            "backend": options.backend,
            "batch_size": options.batch_size,
            "seed": options.seed,
            "chat_template": chat,
            "max_gen_toks": gen_toks,
            # lm-eval keeps the last max_length tokens: longer prompts lose their beginning.
            "context": {"max_length": max_length, "over_length": sum(n > budget for n in longest)},
            "versions": versions(),
        },
        files={"requests": {"path": REQUESTS, "blake3": sources.digest(out_dir / REQUESTS)}},
    )  # fmt: skip
    results.write_result(out_dir, result, rows)
    return results.load_result(out_dir)


# ---------------------------------------------------------------- scoring saved answers


def score_file(
    spec: WorldValuesSpec, predictions: Path, data: Path | None, out_dir: Path | None
) -> dict[str, Any]:
    """Score answers produced elsewhere, in upstream ``evaluate.py``'s input format: a CSV/TSV
    with ``QUESTION_ID``, ``PARTICIPANT_ID``, ``SCORE`` (one row per answer; several rows for one
    participant and question are several samples). Needs ``--data`` for groups and humans."""
    from evals import results
    from evals.sources import digest

    if data is None:
        raise ValueError("worldvaluesbench: --data must be the WorldValuesBench/ folder")
    items, digests = load(spec, data)
    resolved = resolve(spec, digests, len(items))
    by_key = {(i.question_id, i.participant): i for i in items}
    text = Path(predictions).read_text(encoding="utf-8")
    delimiter = "\t" if "\t" in text.splitlines()[0] else ","
    answers: dict[tuple[str, str], list[str]] = defaultdict(list)
    for number, row in enumerate(csv.DictReader(text.splitlines(), delimiter=delimiter), 2):
        if not {"QUESTION_ID", "PARTICIPANT_ID", "SCORE"} <= set(row):
            raise ValueError(f"{predictions}: needs columns QUESTION_ID, PARTICIPANT_ID, SCORE")
        key = (row["QUESTION_ID"], _participant(row["PARTICIPANT_ID"]))
        if key not in by_key:
            raise ValueError(f"{predictions}:{number}: {key} is not a row of {data}/{SAMPLES}")
        answers[key].append(row["SCORE"] or "")
    ordered = sorted(answers.items(), key=lambda kv: by_key[kv[0]].index)
    rows = [
        {**_base_row(by_key[key], doc_id), "samples": samples}
        for doc_id, (key, samples) in enumerate(ordered)
    ]
    computed = metrics(rows, resolved)
    result = results.envelope(
        spec, "worldvaluesbench", resolved, computed, instances=len(rows),
        breakdown=breakdown(rows),
        model={"predictions": digest(Path(predictions))},
    )  # fmt: skip
    if out_dir:
        results.write_result(out_dir, result, rows)
        return results.load_result(out_dir)
    return result


def resolve_data(spec: WorldValuesSpec, data: Path) -> dict[str, Any]:
    """The resolved spec of the WorldValuesBench folder ``data`` (as ``evaluate`` resolves it)."""
    items, digests = load(spec, data)
    return resolve(spec, digests, len(items))


def texts(data: Path) -> list[str]:
    """Per probe row (``probe/samples.tsv`` order) its value question's text."""
    return [item.question for item in load(SPECS[0], data)[0]]


FAMILY = Family(
    kind="worldvaluesbench",
    metrics=metrics,
    evaluate=evaluate,
    score=score_file,
    resolve=resolve_data,
    texts=texts,
)
