"""WorldValuesBench (Zhao et al., LREC-COLING 2024): (demographic attributes, value question) ->
the answer distribution of a demographic group, compared with the humans' by Wasserstein-1.

The survey answers may not be redistributed, so nothing is bundled: ``data`` is the user's own
copy of the released ``WorldValuesBench/`` folder, of which exactly these files are read:

* ``question_metadata.json`` — ``{id: {question, answer_scale_min, answer_scale_max, ...}}``
  (upstream also keeps it as ``dataset_construction/question_metadata.json``);
* ``probe/samples.tsv`` — the probe set: columns ``Question``, ``Continent``, ``Urban / Rural``,
  ``Education``, ``D_INTERVIEW`` (36 questions x 94 groups x 5 participants = 8,280 rows);
* ``full/full_demographic_qa.tsv`` — ``D_INTERVIEW`` + one text answer per demographic column;
* ``full/full_value_qa.tsv`` — ``D_INTERVIEW`` + one numeric answer per value question.

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
import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evals import distributions as dist
from evals.families import Family, RunOptions
from evals.spec import TaskSpec, spec_hash

METADATA = "question_metadata.json"
SAMPLES = "probe/samples.tsv"
DEMOGRAPHICS = "full/full_demographic_qa.tsv"
VALUES = "full/full_value_qa.tsv"
GROUP_COLUMNS = ("Continent", "Urban / Rural", "Education")
REQUESTS = "requests.jsonl"
_SCORE = re.compile(r'"answer as a score"\s*:\s*"?\s*(-?\d+)')
_PLAIN_INT = re.compile(r"\s*(-?\d+)\s*")


@dataclass(frozen=True)
class WorldValuesSpec(TaskSpec):
    """A WorldValuesBench spec: which demographic columns the prompt lists, the W1 threshold,
    and (``n_samples`` > 0) the sampled-generations variant's settings."""

    demographics: tuple[str, ...] = ("B_COUNTRY", "H_URBRURAL", "Q275")
    threshold: float = 0.2
    n_samples: int = 0  # 0: distribution from option log-likelihoods
    temperature: float = 1.0
    max_gen_toks: int = 64

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["demographics"] = list(self.demographics)
        return out


def _spec(fmt: str, n_samples: int, version: int = 1) -> WorldValuesSpec:
    return WorldValuesSpec(
        task_id=f"worldvaluesbench{':' + fmt if fmt else ''}::probe",
        dataset="Demon702/WorldValuesBench:probe",
        split="probe",
        fewshot=None,
        prompt_format="wvb_person_x_" + ("explain_and_score" if n_samples else "score"),
        normalizations=("scale_position_0_1", "sampled" if n_samples else "option_softmax"),
        primary_metric="questions_below_threshold",
        version=version,
        sample_threshold=10**9,  # never subsample: the probe set is stratified by group
        n_samples=n_samples,
    )


SPECS = [_spec("", 0), _spec("cot", 5)]


@dataclass(frozen=True)
class Item:
    """One probe row: a participant's demographics and their answer to one value question."""

    index: int
    question_id: str
    participant: str
    group: str
    demographics: tuple[tuple[str, str], ...]
    question: str
    scale: tuple[int, int]
    human: int


# ---------------------------------------------------------------- loading the user's copy


def data_files(root: Path) -> dict[str, Path]:
    """The four released files under ``root`` (a clear error names any missing one)."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(
            f"{root}: WorldValuesBench data must be the released WorldValuesBench/ folder "
            f"(holding {METADATA}, {SAMPLES}, {DEMOGRAPHICS}, {VALUES})"
        )
    files = {name: root / name for name in (METADATA, SAMPLES, DEMOGRAPHICS, VALUES)}
    missing = [name for name, path in files.items() if not path.is_file()]
    if missing:
        hint = f" (copy dataset_construction/{METADATA} there)" if METADATA in missing else ""
        raise ValueError(f"{root}: missing {', '.join(missing)}{hint}")
    return files


def _read_tsv(path: Path, wanted: set[str] | None = None) -> tuple[list[str], dict[str, dict]]:
    """(header, ``D_INTERVIEW -> row``), keeping only ``wanted`` participants when given."""
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        header = reader.fieldnames or []
        if "D_INTERVIEW" not in header:
            raise ValueError(f"{path}: no D_INTERVIEW column (is this a WorldValuesBench TSV?)")
        rows = {}
        for row in reader:
            key = _participant(row["D_INTERVIEW"])
            if wanted is None or key in wanted:
                rows[key] = row
    return header, rows


def _participant(value: str) -> str:
    """D_INTERVIEW as written by pandas may read '156070594' or '156070594.0'."""
    value = value.strip()
    return value[:-2] if value.endswith(".0") else value


def _answer(value: str, where: str) -> int:
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{where}: answer {value!r} is not a number") from None
    if not math.isfinite(number) or number != int(number):
        raise ValueError(f"{where}: answer {value!r} is not an integer on the scale")
    return int(number)


def load(spec: WorldValuesSpec, root: Path) -> tuple[list[Item], dict[str, str]]:
    """Every probe row as an :class:`Item`, and ``{file: blake3}`` of the four files read."""
    from reprolm.hashing import hash_file

    files = data_files(root)
    metadata = json.loads(files[METADATA].read_text(encoding="utf-8"))
    with open(files[SAMPLES], encoding="utf-8", newline="") as handle:
        samples = list(csv.DictReader(handle, delimiter="\t"))
    needed = {"Question", "D_INTERVIEW", *GROUP_COLUMNS}
    if samples and not needed <= set(samples[0]):
        missing = sorted(needed - set(samples[0]))
        raise ValueError(f"{files[SAMPLES]}: missing column(s) {', '.join(missing)}")
    wanted = {_participant(row["D_INTERVIEW"]) for row in samples}
    dem_header, dem = _read_tsv(files[DEMOGRAPHICS], wanted)
    _, values = _read_tsv(files[VALUES], wanted)
    for column in spec.demographics:
        if column not in dem_header:
            raise ValueError(f"{files[DEMOGRAPHICS]}: no demographic column {column!r}")
        if column not in metadata:
            raise ValueError(f"{files[METADATA]}: no entry for demographic column {column!r}")
    items = []
    for index, row in enumerate(samples):
        where = f"{files[SAMPLES]}:{index + 2}"
        qid, pid = row["Question"], _participant(row["D_INTERVIEW"])
        if qid not in metadata:
            raise ValueError(f"{where}: question {qid!r} is not in {files[METADATA]}")
        for table, path in ((dem, files[DEMOGRAPHICS]), (values, files[VALUES])):
            if pid not in table:
                raise ValueError(f"{where}: participant {pid} is not in {path}")
        if qid not in values[pid]:
            raise ValueError(f"{files[VALUES]}: no column for value question {qid!r}")
        meta = metadata[qid]
        lo, hi = int(meta["answer_scale_min"]), int(meta["answer_scale_max"])
        human = _answer(values[pid][qid], f"{files[VALUES]}: participant {pid}, {qid}")
        if not lo <= human <= hi:
            raise ValueError(
                f"{files[VALUES]}: participant {pid}, {qid}: answer {human} is outside the "
                f"scale {lo}..{hi} of {files[METADATA]}"
            )
        items.append(
            Item(
                index=index,
                question_id=qid,
                participant=pid,
                group=" | ".join(row[c] for c in GROUP_COLUMNS),
                demographics=tuple(
                    (metadata[c]["question"], dem[pid][c]) for c in spec.demographics
                ),
                question=meta["question"],
                scale=(lo, hi),
                human=human,
            )
        )
    digests = {name: hash_file(path) for name, path in sorted(files.items())}
    return items, digests


def resolve(spec: WorldValuesSpec, digests: dict[str, str], n_rows: int) -> dict[str, Any]:
    """The spec + the digest of the files read (their sorted name/blake3 pairs) + row count."""
    from reprolm.hashing import hash_bytes

    actual = hash_bytes("".join(f"{k}\0{v}\n" for k, v in sorted(digests.items())).encode())
    if spec.dataset_digest is not None and actual != spec.dataset_digest:
        raise ValueError(
            f"WorldValuesBench files digest {actual} differs from the one pinned by "
            f"{spec.task_id} ({spec.dataset_digest})"
        )
    return {
        **spec.to_dict(),
        "dataset_digest": actual,
        "dataset_files": digests,
        "dataset_rows": n_rows,
        "fewshot_digest": None,
        "instances": "all",
    }


# ---------------------------------------------------------------- prompts and parsing


def user_prompt(item: Item, explain: bool) -> str:
    """The paper's "Person X" prompt; ``explain`` asks for its JSON (explanation + score),
    else for the score alone (what option log-likelihoods can score)."""
    lines = ["Person X provided the following demographic information in an interview:"]
    for number, (question, answer) in enumerate(item.demographics, 1):
        lines += [f"{number}. Question: {question}", f" Answer: {answer}"]
    lines.append("")
    ask = "and why?" if explain else "?"
    lines.append(f"What would Person X answer to the following question{' ' if explain else ''}"
                 f"{ask}")  # fmt: skip
    lines.append(f"Question: {item.question}")
    lines.append("")
    if explain:
        lines += [
            "Your output should be in the following format:",
            "{",
            '  "thoughtful explanation": "... upto 30 words '
            '(keep their demographics in mind) ...",',
            '  "answer as a score": "... score ..."',
            "}",
        ]
    else:
        lo, hi = item.scale
        lines.append(f"Answer with a single score from {lo} to {hi}.")
    return "\n".join(lines)


def render(tokenizer: Any, user: str) -> tuple[str, bool]:
    """(prompt, chat?): the tokenizer's chat template when it has one, else the plain text
    (a pretrained-only checkpoint has none); the rendered prompt is saved either way."""
    from evals import engine

    if getattr(tokenizer, "chat_template", None):
        return engine.render_chat(tokenizer, [{"role": "user", "content": user}]), True
    return user + "\n\n", False


def parse_score(text: str, scale: list[int] | tuple[int, int]) -> int | None:
    """The score of a response: the ``"answer as a score"`` field, or a response that is only
    an integer (upstream's SCORE column); None when absent or off the scale."""
    match = _SCORE.search(text) or _PLAIN_INT.fullmatch(text)
    if not match:
        return None
    value = int(match.group(1))
    return value if scale[0] <= value <= scale[1] else None


# ---------------------------------------------------------------- metrics


def row_distribution(row: dict) -> list[float] | None:
    """The model's distribution over the row's scale: softmax of the option log-likelihoods, or
    the histogram of the parseable sampled answers (None when none parses)."""
    lo, hi = row["scale"]
    if "choices" in row:
        return dist.softmax([c["loglik"] for c in row["choices"]])
    scores = [s for s in (parse_score(t, row["scale"]) for t in row["samples"]) if s is not None]
    return dist.histogram(scores, range(lo, hi + 1)) if scores else None


def distance(rows: list[dict], models: list[list[float] | None]) -> float:
    """W1 between the mixture of the rows' model distributions and their human answers on
    [0, 1]; 1.0 (the largest possible) when no row has a model distribution."""
    lo, hi = rows[0]["scale"]
    known = [m for m in models if m is not None]
    if not known:
        return 1.0
    positions = dist.scale_positions(hi - lo + 1)
    human = dist.histogram([r["human"] for r in rows], range(lo, hi + 1))
    return dist.wasserstein1(positions, positions, dist.mixture(known), human)


def breakdown(rows: list[dict]) -> dict[str, dict[str, float]]:
    """W1 per question (its rows pooled) and per ``"<question> | <group>"``."""
    by_question: dict[str, list] = defaultdict(list)
    by_group: dict[str, list] = defaultdict(list)
    for row in rows:
        entry = (row, row_distribution(row))
        by_question[row["question_id"]].append(entry)
        by_group[f"{row['question_id']} | {row['group']}"].append(entry)

    def w1(entries: list) -> float:
        return distance([r for r, _ in entries], [m for _, m in entries])

    return {
        "questions": {q: w1(e) for q, e in sorted(by_question.items())},
        "groups": {g: w1(e) for g, e in sorted(by_group.items())},
    }


def metrics(rows: list[dict], spec: dict[str, Any]) -> dict[str, float]:
    """Headline share of questions with W1 < threshold; the same per (question, group); mean
    W1s; and the share of sampled answers that did not parse (0 for option probabilities)."""
    if not rows:
        raise ValueError("no predictions to score")
    parts = breakdown(rows)
    threshold = spec["threshold"]
    questions, groups = list(parts["questions"].values()), list(parts["groups"].values())
    samples = [t for r in rows for t in r.get("samples", [])]
    invalid = [parse_score(t, r["scale"]) is None for r in rows for t in r.get("samples", [])]
    return {
        "questions_below_threshold": sum(d < threshold for d in questions) / len(questions),
        "groups_below_threshold": sum(d < threshold for d in groups) / len(groups),
        "mean_w1": math.fsum(questions) / len(questions),
        "mean_group_w1": math.fsum(groups) / len(groups),
        "invalid": sum(invalid) / len(samples) if samples else 0.0,
    }


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
    from evals import engine, results, sources
    from evals.harness import model_digest, versions
    from reprolm.canonical import canonical_json

    items, digests = load(spec, data)
    resolved = resolve(spec, digests, len(items))
    items = items[: options.limit] if options.limit is not None else items
    lm = options.lm or engine.load_model(
        model_dir, options.batch_size, backend=options.backend, device=options.device
    )
    tokenizer = engine.tokenizer_of(lm)
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
        outputs = engine.generate(
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
        scored = engine.loglikelihoods(lm, requests, seed=options.seed)
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
            + max(engine.n_tokens(lm, r["context"], c) for c in r["continuations"])
            for r in requests
        ]
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / REQUESTS).write_text("".join(canonical_json(r) + "\n" for r in requests), "utf-8")
    computed = metrics(rows, resolved)
    result = {
        "task_id": spec.task_id,
        "kind": "worldvaluesbench",
        "spec_hash": spec_hash(resolved),
        "spec": resolved,
        "metrics": computed,
        "primary_metric": spec.primary_metric,
        "primary": computed[spec.primary_metric],
        "instances": len(rows),
        "limit": options.limit,
        "breakdown": breakdown(rows),
        "model": {"digest": model_digest(Path(model_dir)), "name": Path(model_dir).name},
        "harness": {
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
        "files": {"requests": {"path": REQUESTS, "blake3": sources.digest(out_dir / REQUESTS)}},
    }
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
    result = {
        "task_id": spec.task_id,
        "kind": "worldvaluesbench",
        "spec_hash": spec_hash(resolved),
        "spec": resolved,
        "metrics": computed,
        "primary_metric": spec.primary_metric,
        "primary": computed[spec.primary_metric],
        "instances": len(rows),
        "breakdown": breakdown(rows),
        "model": {"predictions": digest(Path(predictions))},
    }
    if out_dir:
        results.write_result(out_dir, result, rows)
        return results.load_result(out_dir)
    return result


def resolve_data(spec: WorldValuesSpec, data: Path) -> dict[str, Any]:
    """The resolved spec of the WorldValuesBench folder ``data`` (as ``evaluate`` resolves it)."""
    items, digests = load(spec, data)
    return resolve(spec, digests, len(items))


FAMILY = Family(
    kind="worldvaluesbench",
    metrics=metrics,
    evaluate=evaluate,
    score=score_file,
    resolve=resolve_data,
)
