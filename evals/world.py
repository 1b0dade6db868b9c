"""The tiny world's own eval sets as task specs (regime ``tiny``), run through lm-eval.

The world artifact writes ``eval/<task>.jsonl`` and ``eval/index.json`` (stages/world/evalsets.py);
each task is registered here under a ``task:format::tiny`` id: ``arith_gen:gen::tiny``
(generative, scored by the shared verifier registry, the RLVR reward's code) and
``arith_mc:rc::tiny``, ``facts_mc:rc::tiny``, ``tom_mc:rc::tiny`` (cloze multiple choice:
``Question: <q>\\nAnswer:`` scored on each `` <choice>``, as OLMES' rc format).

Unlike the other families, lm-eval renders these prompts itself (``num_fewshot`` shots drawn from
the same set, the chat template applied by lm-eval when chat formatted), so a batch of world tasks
that share their formatting runs in one ``lm_eval.simple_evaluate`` call (:func:`evaluate_batch`):
the batches, hence the float rounding of padded rows, are those of the task pack this replaces.
The payload keeps each task's lm-eval YAML (``task.yaml``, data path relative to the world
artifact); metrics are computed from the saved predictions (:func:`metrics`), so ``reprolm eval
recompute`` re-derives them, and the multiple-choice ones are checked against lm-eval's own.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evals import lmeval, results, sources
from evals.families import WORLD_REGIME, Family, RunOptions
from evals.metrics import predicted
from evals.spec import TaskSpec, resolve
from evals.verifiers import get_verifier

PROMPT = "Question: {{question}}\nAnswer:"
PROMPT_FORMAT = "tiny_world_qa"
CHAT_END = "<|im_end|>"
TASK_TYPES = {"gen": "generate", "rc": "multiple_choice"}  # spec format -> index.json type
MC_METRICS = {"acc": "raw", "acc_norm": "per_char"}  # lm-eval's names -> normalization
GEN_METRIC = "exact_match"
TASK_YAML = "task.yaml"
EVERY_ROW = 1 << 62  # the world's sets are evaluated whole (or their first `limit` rows)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _spec(task: str, fmt: str, verifier: str | None = None) -> TaskSpec:
    return TaskSpec(
        task_id=f"{task}:{fmt}::{WORLD_REGIME}",
        dataset=f"reprolm/world:eval/{task}.jsonl",
        split="test",
        fewshot=None,  # num_fewshot shots come from the same set (lm-eval's sampler)
        prompt_format=PROMPT_FORMAT,
        normalizations=(verifier,) if verifier else tuple(MC_METRICS.values()),
        primary_metric=GEN_METRIC if fmt == "gen" else "acc",
        version=1,
        sample_threshold=EVERY_ROW,
    )


SPECS: tuple[TaskSpec, ...] = (
    _spec("arith_gen", "gen", "numeric_answer"),
    _spec("arith_mc", "rc"),
    _spec("facts_mc", "rc"),
    _spec("tom_mc", "rc"),
)
TASK_IDS: dict[str, str] = {spec.task: spec.task_id for spec in SPECS}  # index name -> id


def task_type(spec: TaskSpec) -> str:
    """``generate`` or ``multiple_choice`` (the world's index.json ``type``)."""
    return TASK_TYPES[spec.format]


def verifier_of(spec: TaskSpec) -> str | None:
    """The verifier registry name a generative world task is scored with."""
    return spec.normalizations[0] if spec.format == "gen" else None


def data_path(spec: TaskSpec) -> str:
    """The task's data file, relative to the world artifact (``eval/<task>.jsonl``)."""
    return spec.dataset.partition(":")[2]


def load_index(world: Path) -> dict[str, dict]:
    """Read and check ``eval/index.json`` of a world artifact."""
    path = world / "eval" / "index.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: input 'world' must be a world artifact")
    index = json.loads(path.read_text(encoding="utf-8"))
    for task, entry in index.items():
        where = f"{path}: task {task!r}"
        if not _NAME.match(task):
            raise ValueError(f"{where}: task names must be Python identifiers")
        if entry.get("type") not in TASK_TYPES.values():
            raise ValueError(
                f"{where}: 'type' must be one of {sorted(TASK_TYPES.values())}, "
                f"got {entry.get('type')!r}"
            )
        if entry["type"] == "generate":
            if not entry.get("verifier"):
                raise ValueError(f"{where}: generative tasks need a 'verifier' (registry name)")
            try:
                get_verifier(entry["verifier"])
            except KeyError as error:
                raise ValueError(f"{where}: {error.args[0]}") from None
        if not (world / entry.get("file", "")).is_file():
            raise FileNotFoundError(f"{where}: data file {entry.get('file')!r} does not exist")
    return index


def spec_for(task: str, entry: dict) -> TaskSpec:
    """The registered spec of an index.json task; the entry must agree with it."""
    if task not in TASK_IDS:
        raise ValueError(
            f"eval/index.json task {task!r} has no registered spec (known: {sorted(TASK_IDS)})"
        )
    spec = next(s for s in SPECS if s.task == task)
    pinned = {"type": task_type(spec), "file": data_path(spec)}
    if verifier_of(spec):
        pinned["verifier"] = verifier_of(spec)
    differs = {k: (v, entry.get(k)) for k, v in pinned.items() if entry.get(k) != v}
    if differs:
        raise ValueError(
            f"eval/index.json task {task!r} differs from spec {spec.task_id}: "
            + ", ".join(
                f"{k} is {got!r}, the spec pins {want!r}" for k, (want, got) in differs.items()
            )
        )
    return spec


def task_yaml(spec: TaskSpec, *, chat: bool, max_gen_toks: int) -> str:
    """The lm-eval YAML of one task (data path relative to the world artifact)."""
    lines = [
        "# Generated by evals.world. data_files is relative to the world artifact.",
        f"task: {spec.task}",
        "dataset_path: json",
        "dataset_kwargs:",
        "  data_files:",
        f"    test: {json.dumps(data_path(spec))}",
        "test_split: test",
        "fewshot_split: test",
        f"doc_to_text: {json.dumps(PROMPT)}",
    ]
    if spec.format == "rc":
        lines += ["output_type: multiple_choice", "doc_to_choice: choices", "doc_to_target: label"]
        metrics = list(MC_METRICS)
    else:
        lines += [
            "output_type: generate_until",
            "doc_to_target: answer",
            "generation_kwargs:",
            f"  until: [{', '.join(json.dumps(u) for u in generation_until(chat))}]",
            "  do_sample: false",
            f"  max_gen_toks: {max_gen_toks}",
        ]
        metrics = [GEN_METRIC]  # lm-eval's own; the result's comes from the verifier
    lines.append("metric_list:")
    for metric in metrics:
        lines += [f"  - metric: {metric}", "    aggregation: mean", "    higher_is_better: true"]
    lines += ["metadata:", "  version: 1.0", ""]
    return "\n".join(lines)


def generation_until(chat: bool) -> list[str]:
    """Stop strings: a newline, and the end of the assistant turn when chat formatted."""
    return ["\n", CHAT_END] if chat else ["\n"]


def instance_scores(rows: list[dict], spec: dict[str, Any]) -> dict[str, list[float]]:
    """Per metric, each instance's score: the verifier's for a generative task, 0/1 correctness
    of the argmax of log-likelihood (``acc``) or of it per character (``acc_norm``) otherwise."""
    if spec["task_id"].partition("::")[0].endswith(":gen"):
        verify = get_verifier(spec["normalizations"][0])
        return {GEN_METRIC: [float(verify(r["response"], str(r["target"]))) for r in rows]}
    return {
        name: [float(predicted(row, norm) == row["gold"]) for row in rows]
        for name, norm in MC_METRICS.items()
    }


def metrics(rows: list[dict], spec: dict[str, Any]) -> dict[str, float]:
    """Every metric from the prediction rows (model-free): the mean of :func:`instance_scores`
    (summed in instance order, as lm-eval's ``mean``)."""
    if not rows:
        raise ValueError("no predictions to score")
    return {name: sum(s) / len(s) for name, s in instance_scores(rows, spec).items()}


def _row(spec: TaskSpec, sample: dict) -> dict:
    """One predictions row from an lm-eval sample (what lm-eval scored: filtered responses)."""
    base = {"doc_id": sample["doc_id"], "id": sample["doc"].get("id")}
    if spec.format == "gen":
        context, kwargs = sample["arguments"][0]
        return {
            **base,
            "context": context,
            "generation_kwargs": json.loads(json.dumps(kwargs)),
            "response": sample["filtered_resps"][0],
            "target": sample["target"],
        }
    contexts = {arg[0] for arg in sample["arguments"]}
    if len(contexts) != 1:
        raise RuntimeError(f"{spec.task_id}: doc {sample['doc_id']} has several contexts")
    choices = [
        {
            "continuation": arg[1],
            "loglik": float(resp[0]),
            "is_greedy": bool(resp[1]),
            "n_chars": len(text),  # lm-eval's acc_norm length: the choice without its delimiter
        }
        for arg, resp, text in zip(
            sample["arguments"], sample["filtered_resps"], sample["doc"]["choices"], strict=True
        )
    ]
    return {**base, "context": contexts.pop(), "gold": int(sample["doc"]["label"]),
            "choices": choices}  # fmt: skip


def _resolved(spec: TaskSpec, data: Path, options: RunOptions, max_gen_toks: int) -> dict:
    """The spec resolved on its data plus what lm-eval's rendering depends on (in the hash)."""
    resolved = resolve(spec, data, len(sources.read_jsonl(data)))
    resolved |= {"prompt": PROMPT, "num_fewshot": options.num_fewshot, "chat": bool(options.chat)}
    if spec.format == "gen":
        until = generation_until(bool(options.chat))
        resolved["generation"] = {"until": until, "max_gen_toks": max_gen_toks, "do_sample": False}
    return resolved


def evaluate_batch(
    jobs: Sequence[tuple[TaskSpec, Path, Path]], model_dir: Path, options: RunOptions
) -> list[dict[str, Any]]:
    """Run world tasks ``(spec, data file, result dir)`` sharing ``options`` in one lm-eval call;
    write each result directory; return the results loaded, in job order."""
    lm = options.lm or lmeval.load_model(
        model_dir, options.batch_size, backend=options.backend, device=options.device
    )
    chat = bool(options.chat)
    max_gen_toks = options.max_gen_toks or 32
    scratch = Path(tempfile.mkdtemp(prefix="reprolm-world-"))
    try:
        for spec, data, out_dir in jobs:
            out_dir.mkdir(parents=True, exist_ok=True)
            yaml = task_yaml(spec, chat=chat, max_gen_toks=max_gen_toks)
            (out_dir / TASK_YAML).write_text(yaml, encoding="utf-8")
            (scratch / f"{spec.task}.yaml").write_text(
                f"task: {spec.task}\n"
                f"include: {json.dumps(str((out_dir / TASK_YAML).resolve()))}\n"
                "dataset_kwargs:\n"
                f"  data_files:\n    test: {json.dumps(str(data.resolve()))}\n"
                f"  cache_dir: {json.dumps(str((scratch / 'datasets-cache').resolve()))}\n",
                encoding="utf-8",
            )
        names = [spec.task for spec, _, _ in jobs]
        out = lmeval.simple_evaluate(
            lm, scratch, names, options.seed, num_fewshot=options.num_fewshot,
            limit=options.limit, chat=chat,
        )  # fmt: skip
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    model = lmeval.model_block(model_dir)
    versions = lmeval.versions()
    written = []
    for spec, data, out_dir in jobs:
        samples = sorted(out["samples"][spec.task], key=lambda s: s["doc_id"])
        rows = [_row(spec, s) for s in samples]
        resolved = _resolved(spec, data, options, max_gen_toks)
        values = metrics(rows, resolved)
        reported = _lm_eval_metrics(out["results"][spec.task])
        if spec.format == "rc" and any(values[m].hex() != reported[m].hex() for m in MC_METRICS):
            raise RuntimeError(f"{spec.task_id}: metrics {values} differ from lm-eval's {reported}")
        harness = {
            "engine": "lm_eval.simple_evaluate",
            "backend": options.backend,
            "batch_size": options.batch_size,
            "seed": options.seed,
            "num_fewshot": options.num_fewshot,
            "chat_template": chat,
            "batch": names,  # the tasks of the one lm-eval call (batching decides rounding)
            "lm_eval_metrics": reported,
            "versions": versions,
        }
        files = {"task": {"path": TASK_YAML, "blake3": sources.digest(out_dir / TASK_YAML)}}
        result = results.envelope(
            spec, "world", resolved, values, instances=len(rows), limit=options.limit,
            model=model, harness=harness, files=files,
        )  # fmt: skip
        results.write_result(out_dir, result, rows)
        written.append(results.load_result(out_dir))
    return written


def _lm_eval_metrics(raw: dict) -> dict[str, float]:
    """``{"acc,none": 0.3, "acc_stderr,none": "N/A", "alias": ...}`` -> ``{"acc": 0.3}``."""
    out = {}
    for key, value in raw.items():
        metric, _, filt = key.partition(",")
        if filt == "none" and not metric.endswith("_stderr"):
            out[metric] = float(value)
    return out


def _evaluate(
    spec: TaskSpec, model_dir: Path, data: Path, out_dir: Path, options: RunOptions
) -> dict[str, Any]:
    return evaluate_batch([(spec, data, out_dir)], model_dir, options)[0]


KIND = "world"
FAMILY = Family(kind=KIND, metrics=metrics, evaluate=_evaluate, evaluate_batch=evaluate_batch)
