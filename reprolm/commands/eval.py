"""``reprolm eval``: task specs, runs, scoring of saved predictions, recompute, OLMES report."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from reprolm.commands import add_command, emit

EXIT_FAIL = 1


def cmd_list(args: argparse.Namespace) -> int:
    from evals.registry import SPECS

    rows = {tid: spec.to_dict() for tid, spec in sorted(SPECS.items())}
    text = "\n".join(
        f"{tid:24s} {s['dataset']} {s['split']}  {(s['fewshot'] or {'n': 0})['n']}-shot  "
        f"{s['primary_metric']}"
        for tid, s in rows.items()
    )
    emit(rows, args.json, text)
    return 0


def cmd_spec(args: argparse.Namespace) -> int:
    from evals import sources
    from evals.registry import get_spec
    from evals.spec import resolve, spec_hash

    spec = _spec(args.task_id, get_spec)
    if args.data is None:
        emit(spec.to_dict(), True, "")
        return 0
    from evals.families import family_of

    hook = family_of(spec).resolve  # directory datasets resolve in their family
    if hook is not None:
        resolved = hook(spec, args.data)
    else:
        resolved = resolve(spec, args.data, len(sources.read_rows(args.data, spec.split)))
    doc = {"spec_hash": spec_hash(resolved), "spec": resolved}
    emit(doc, args.json, f"{spec.task_id}  spec_hash {doc['spec_hash']}")
    return 0


def _critics(spec: Any, critic: Path | None) -> dict[str, Any]:
    """``--critic`` as RunOptions.critics; refused for a family that takes no critic."""
    from evals.critics import NAMES, Critic
    from evals.families import kind_of

    if critic is None:
        return {}
    if kind_of(spec) not in NAMES:
        raise ValueError(f"--critic: {spec.task_id} takes no critic (only {', '.join(NAMES)})")
    return {kind_of(spec): Critic(critic)}


def cmd_run(args: argparse.Namespace) -> int:
    from evals.families import RunOptions, family_of
    from evals.registry import get_spec

    spec = _spec(args.task_id, get_spec)
    _sandbox_network(args)
    runner = family_of(spec).evaluate
    if runner is None:
        raise ValueError(f"{spec.task_id}: this task does not run on a model here (use score)")
    _threads(args.threads)
    options = RunOptions(
        limit=args.limit,
        batch_size=args.batch_size,
        seed=args.seed,
        backend=args.backend,
        device=args.device,
        max_gen_toks=args.max_gen_toks,
        critics=_critics(spec, args.critic),
    )
    result = runner(spec, args.model, args.data, args.out, options)
    emit(result, args.json, _summary(result))
    return 0


SANDBOX_HELP = (
    "code-execution tasks (HumanEval): run generated code even where no network namespace "
    "can be made (the code then has this machine's network; other sandbox limits stay)"
)


def _sandbox_network(args: argparse.Namespace) -> None:
    """``--sandbox-allow-network``: the explicit opt-out evals.sandbox asks for."""
    if getattr(args, "sandbox_allow_network", False):
        from evals.sandbox import ALLOW_NETWORK_ENV

        os.environ[ALLOW_NETWORK_ENV] = "1"


def cmd_score(args: argparse.Namespace) -> int:
    from evals.families import family_of
    from evals.registry import get_spec

    spec = _spec(args.task_id, get_spec)
    _sandbox_network(args)
    scorer = family_of(spec).score
    if scorer is None:
        raise ValueError(
            f"{spec.task_id}: only generative tasks are scored from files (this one is "
            "log-likelihood based: run it with `reprolm eval run`)"
        )
    extra = {"critic": args.critic} if _critics(spec, args.critic) else {}
    result = scorer(spec, args.predictions, args.data, args.out, **extra)
    emit(result, args.json, _summary(result))
    return 0


def cmd_recompute(args: argparse.Namespace) -> int:
    from evals.results import RESULT, recompute, recompute_all

    path = args.result
    if path.is_dir() and not (path / RESULT).is_file():  # an evaluate artifact: every result
        try:
            report = recompute_all(path)
        except FileNotFoundError as error:
            raise ValueError(str(error)) from None
        lines = [
            f"{'ok' if not r['problems'] else 'FAIL':4s} {r['result']}" for r in report["results"]
        ]
        lines += report["problems"] or [f"ok: {len(lines)} results reproduced exactly"]
        emit(report, args.json, "\n".join(lines))
        return EXIT_FAIL if report["problems"] else 0
    report = recompute(path)
    lines = [f"{k:16s} {v!r}" for k, v in sorted(report["recomputed"].items())]
    lines += report["problems"] or [f"ok: every metric of {report['result']} reproduced exactly"]
    emit(report, args.json, "\n".join(lines))
    return EXIT_FAIL if report["problems"] else 0


def cmd_report(args: argparse.Namespace) -> int:
    from evals.report import compare_formats, markdown
    from evals.results import load_result

    rows = compare_formats([load_result(p) for p in args.results])
    emit(rows, args.json, markdown(rows))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from evals import compare
    from evals.collect import load_marked

    try:
        entries, external = load_marked(args.inputs, args.label)
    except FileNotFoundError as error:
        raise ValueError(str(error)) from None
    table = compare.build(entries, external=external)
    if args.csv:
        args.csv.write_text(compare.csv_text(table), encoding="utf-8")
    if args.plot:
        from evals.plot import write_plot

        write_plot(table, args.plot)
    if args.curve:
        from evals.plot import write_curve
        from evals.table import curve_points

        write_curve(curve_points(table), args.curve)
    emit(table, args.json, compare.markdown(table))
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


CRITIC_HELP = "critic model directory (delta_rot::generate validity); replaces the data's critic/"


def register(commands: Any) -> None:
    group = commands.add_parser("eval", help="OLMES-style evaluation: specs, runs, scoring")
    sub = group.add_subparsers(dest="eval_command", required=True)
    add_command(sub, "list", _guard(cmd_list), "registered task specs")
    spec = add_command(sub, "spec", _guard(cmd_spec), "a spec (resolved and hashed with --data)")
    spec.add_argument("task_id")
    spec.add_argument("--data", type=Path, help="the dataset file or dir to resolve")
    run = add_command(sub, "run", _guard(cmd_run), "run a spec on a model with lm-eval")
    run.add_argument("task_id")
    run.add_argument("--model", type=Path, required=True, help="HF model directory")
    run.add_argument("--data", type=Path, required=True, help="the task's dataset file or dir")
    run.add_argument("--out", type=Path, required=True, help="result directory")
    run.add_argument("--limit", type=int, default=None, help="first N sampled instances")
    run.add_argument("--batch-size", type=int, default=1)
    run.add_argument("--seed", type=int, default=1234)
    run.add_argument("--threads", type=int, default=1)
    run.add_argument("--backend", choices=("hf", "vllm"), default="hf", help="lm-eval backend")
    run.add_argument("--device", default="cpu", help="hf backend device (cpu, cuda, cuda:1)")
    run.add_argument("--max-gen-toks", type=int, default=None, help="generative tasks' limit")
    run.add_argument("--critic", type=Path, help=CRITIC_HELP)
    run.add_argument("--sandbox-allow-network", action="store_true", help=SANDBOX_HELP)
    score = add_command(sub, "score", _guard(cmd_score), "score saved generations, no model")
    score.add_argument("task_id")
    score.add_argument(
        "--predictions",
        type=Path,
        required=True,
        help="JSONL question/response (gsm8k, popqa, mmlu), prompt/response (ifeval), judgments "
        "(alpaca_eval_v2, xstest), per-answer logliks (truthfulqa), or a folder of "
        "<domain id>.txt action files (proc2pddl)",
    )
    score.add_argument(
        "--data",
        type=Path,
        help="GSM8K JSONL (question, answer) or IFEval input_data JSONL (prompt, instruction ids)",
    )
    score.add_argument("--out", type=Path, help="write result.json + predictions.jsonl here")
    score.add_argument("--critic", type=Path, help=CRITIC_HELP)
    score.add_argument("--sandbox-allow-network", action="store_true", help=SANDBOX_HELP)
    recompute = add_command(
        sub, "recompute", _guard(cmd_recompute), "recompute metrics from saved predictions"
    )
    recompute.add_argument(
        "result", type=Path,
        help="result.json or its directory, or a directory of results (an evaluate artifact)",
    )  # fmt: skip
    report = add_command(sub, "report", _guard(cmd_report), "rc vs mc per task, and the better")
    report.add_argument("results", type=Path, nargs="+")
    comp = add_command(
        sub, "compare", _guard(cmd_compare), "tasks x checkpoints table across runs and recipes"
    )
    comp.add_argument(
        "inputs",
        type=Path,
        nargs="+",
        help="spec result dirs, evaluate, score (external) or release artifacts",
    )
    comp.add_argument(
        "--label",
        action="append",
        help="column label (release: prefix) per input, in order; default from each input",
    )
    comp.add_argument("--csv", type=Path, help="also write the table as CSV here")
    comp.add_argument("--plot", type=Path, help="also write the grouped-bar plot (PNG) here")
    comp.add_argument(
        "--curve", type=Path,
        help="also write score vs pretraining step (columns pretrain@step<N>) as a PNG here",
    )  # fmt: skip
