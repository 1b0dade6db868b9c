"""``reprolm eval``: task specs, runs, scoring of saved predictions, recompute, OLMES report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from reprolm.commands import add_command, emit

EXIT_FAIL = 1


def cmd_list(args: argparse.Namespace) -> int:
    from reprolm.evalspec.registry import SPECS

    rows = {tid: spec.to_dict() for tid, spec in sorted(SPECS.items())}
    text = "\n".join(
        f"{tid:24s} {s['dataset']} {s['split']}  {(s['fewshot'] or {'n': 0})['n']}-shot  "
        f"{s['primary_metric']}"
        for tid, s in rows.items()
    )
    emit(rows, args.json, text)
    return 0


def cmd_spec(args: argparse.Namespace) -> int:
    from reprolm.evalspec import sources
    from reprolm.evalspec.registry import get_spec
    from reprolm.evalspec.spec import resolve, spec_hash

    spec = _spec(args.task_id, get_spec)
    if args.data is None:
        emit(spec.to_dict(), True, "")
        return 0
    resolved = resolve(spec, args.data, len(sources.read_jsonl(args.data)))
    doc = {"spec_hash": spec_hash(resolved), "spec": resolved}
    emit(doc, args.json, f"{spec.task_id}  spec_hash {doc['spec_hash']}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from reprolm.evalspec.harness import evaluate_mc
    from reprolm.evalspec.registry import get_spec

    spec = _spec(args.task_id, get_spec)
    _threads(args.threads)
    result = evaluate_mc(
        spec,
        args.model,
        args.data,
        args.out,
        limit=args.limit,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    emit(result, args.json, _summary(result))
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from reprolm.evalspec import gsm8k, ifeval, results, sources
    from reprolm.evalspec.registry import get_spec
    from reprolm.evalspec.spec import resolve, spec_hash

    spec = _spec(args.task_id, get_spec)
    if spec.task not in ("gsm8k", "ifeval"):
        raise ValueError(
            f"{spec.task_id}: only generative tasks (gsm8k, ifeval) are scored from files"
        )
    data_rows = sources.read_jsonl(args.data) if args.data else []
    predictions = sources.read_jsonl(args.predictions)
    if spec.task == "ifeval":
        _check_ifeval_data(args.data, data_rows)
        records = ifeval.score_rows(predictions, {row["prompt"]: row for row in data_rows})
        scores = ifeval.metrics(records)
    else:
        gold = {row["question"]: gsm8k.gold_answer(row["answer"]) for row in data_rows}
        records = gsm8k.score_rows(predictions, gold)
        scores = gsm8k.metrics(records)
    resolved = resolve(spec, args.data, len(data_rows)) if args.data else spec.to_dict()
    result: dict[str, Any] = {
        "task_id": spec.task_id,
        "kind": spec.task,
        "spec_hash": spec_hash(resolved),
        "spec": resolved,
        "metrics": scores,
        "primary_metric": spec.primary_metric,
        "instances": len(records),
        "model": {"predictions": sources.digest(args.predictions)},
    }
    result["primary"] = result["metrics"][spec.primary_metric]
    if args.out:
        results.write_result(args.out, result, records)
        result = results.load_result(args.out)
    emit(result, args.json, _summary(result))
    return 0


def _check_ifeval_data(path: Path | None, rows: list[dict]) -> None:
    """Each IFEval data row needs its prompt, instruction ids and kwargs."""
    for number, row in enumerate(rows, 1):
        missing = [k for k in ("prompt", "instruction_id_list", "kwargs") if k not in row]
        if missing:
            raise ValueError(
                f"{path}:{number}: IFEval row lacks {', '.join(missing)} "
                "(expected the input_data.jsonl format: key, prompt, instruction_id_list, kwargs)"
            )


def cmd_recompute(args: argparse.Namespace) -> int:
    from reprolm.evalspec.results import recompute

    report = recompute(args.result)
    lines = [f"{k:16s} {v!r}" for k, v in sorted(report["recomputed"].items())]
    lines += report["problems"] or [f"ok: every metric of {report['result']} reproduced exactly"]
    emit(report, args.json, "\n".join(lines))
    return EXIT_FAIL if report["problems"] else 0


def cmd_report(args: argparse.Namespace) -> int:
    from reprolm.evalspec.report import compare_formats, markdown
    from reprolm.evalspec.results import load_result

    rows = compare_formats([load_result(p) for p in args.results])
    emit(rows, args.json, markdown(rows))
    return 0


def _spec(task_id: str, get_spec):
    try:
        return get_spec(task_id)
    except KeyError as error:
        raise ValueError(error.args[0]) from None


def _threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _summary(result: dict) -> str:
    lines = [f"{result['task_id']}  spec_hash {result['spec_hash'][:16]}  n={result['instances']}"]
    lines += [f"  {k:16s} {v:.4f}" for k, v in sorted(result["metrics"].items())]
    lines.append(f"  primary {result['primary_metric']} = {result['primary']:.4f}")
    return "\n".join(lines)


def _guard(handler):
    """Bad input (unknown id, malformed file) -> message and exit 2, like the other commands."""

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except ValueError as error:
            print(f"reprolm eval: {error}", file=sys.stderr)
            return 2

    return run


def register(commands: Any) -> None:
    group = commands.add_parser("eval", help="OLMES-style evaluation: specs, runs, scoring")
    sub = group.add_subparsers(dest="eval_command", required=True)
    add_command(sub, "list", _guard(cmd_list), "registered task specs")
    spec = add_command(sub, "spec", _guard(cmd_spec), "a spec (resolved and hashed with --data)")
    spec.add_argument("task_id")
    spec.add_argument("--data", type=Path, help="the dataset file (JSONL) to resolve against")
    run = add_command(sub, "run", _guard(cmd_run), "run an rc/mc spec with lm-eval (HF, CPU)")
    run.add_argument("task_id")
    run.add_argument("--model", type=Path, required=True, help="HF model directory")
    run.add_argument("--data", type=Path, required=True, help="dataset JSONL (HF ARC schema)")
    run.add_argument("--out", type=Path, required=True, help="result directory")
    run.add_argument("--limit", type=int, default=None, help="first N sampled instances")
    run.add_argument("--batch-size", type=int, default=1)
    run.add_argument("--seed", type=int, default=1234)
    run.add_argument("--threads", type=int, default=1)
    score = add_command(sub, "score", _guard(cmd_score), "score saved generations, no model")
    score.add_argument("task_id")
    score.add_argument(
        "--predictions",
        type=Path,
        required=True,
        help="JSONL question/response (gsm8k) or prompt/response (ifeval)",
    )
    score.add_argument(
        "--data",
        type=Path,
        help="GSM8K JSONL (question, answer) or IFEval input_data JSONL (prompt, instruction ids)",
    )
    score.add_argument("--out", type=Path, help="write result.json + predictions.jsonl here")
    recompute = add_command(
        sub, "recompute", _guard(cmd_recompute), "recompute metrics from saved predictions"
    )
    recompute.add_argument("result", type=Path, help="result.json or its directory")
    report = add_command(sub, "report", _guard(cmd_report), "rc vs mc per task, and the better")
    report.add_argument("results", type=Path, nargs="+")
