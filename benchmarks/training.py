"""Benchmark the training stages against bare PyTorch / TRL on the same model and data.

For each training job of a finished run (``--workspace``: a directory holding ``artifacts/``
from ``--recipe``, config/micro.yaml by default; without it the micro recipe is run once into a
temp dir; a workspace needs only the chosen stages' input artifacts)
two variants run, each in a fresh process (benchmarks/training_child.py), interleaved over
``--repeats`` rounds (best of):

* ``stage``: ``stages.<stage>.stage.run`` with the job's exact config and input artifacts, into a
  temp output dir (threads and seeds pinned as the runner does);
* ``bare``: the same model and data without the stage (benchmarks/training_bare.py): a plain
  PyTorch loop for pretrain, the TRL trainer with the stage's arguments for sft/dpo/rlvr.

Per variant: ``call_s`` (the stage's ``run()``; bare: load + train), ``train_s`` (the training
loop: ``Trainer.train`` or the bare loop), ``process_s`` (the whole subprocess, start-up and
imports included), the same three in CPU seconds (steadier on a busy machine), tokens trained
(non-pad tokens of the forward passes with grad, counted by the same hook in both), tokens/s and
peak RSS; then stage/bare ratios against the 1.05 target, whether both logged the same losses,
and for a stage over the target a cProfile of both calls: where the extra time goes. Writes JSON
to benchmarks/results/training-micro.json.

    python benchmarks/training.py [--workspace DIR] [--recipe FILE] [--stages S ...]
                                  [--repeats N] [--jobs 1|2] [--output FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import pstats
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from reprolm.canonical import dump_json
from reprolm.environment import cpu_model, package_versions
from reprolm.plan import load_plan

ROOT = Path(__file__).resolve().parents[1]
MICRO = ROOT / "config" / "micro.yaml"
RESULT = ROOT / "benchmarks" / "results" / "training-micro.json"
CHILD = Path(__file__).resolve().parent / "training_child.py"
STAGES = ("pretrain", "sft", "dpo", "rlvr")
VARIANTS = ("stage", "bare")
TARGET = 1.05
TOP = 12
TIMES = ("train_s", "call_s", "process_s")
CPU_TIMES = ("train_cpu_s", "call_cpu_s", "process_cpu_s")  # steadier than wall on a busy machine


def recipe_name(recipe: Path) -> str:
    """The recipe as the report names it: relative to the project when it is one of its own."""
    path = recipe.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def training_jobs(recipe: Path, workspace: Path, stages: Sequence[str] = STAGES) -> list[dict]:
    """The recipe's training jobs of ``stages``: stage, label, config and input artifact dirs
    (checked)."""
    plan = load_plan(recipe)
    jobs = []
    for job in plan.jobs.values():
        if job.stage not in STAGES or job.stage not in stages:
            continue
        inputs = {name: str(workspace / d) for name, d in plan.input_dirs(job).items()}
        for name, path in inputs.items():
            if not (Path(path) / "provenance.json").is_file():
                sys.exit(
                    f"{path}: no provenance.json (input {name!r} of {job.key}); pass --workspace "
                    f"a finished run of {recipe} (benchmarks/workflow_stages.py --workdir DIR)"
                )
        jobs.append(
            {"stage": job.stage, "label": job.label, "config": job.config, "inputs": inputs}
        )
    return jobs


def run_child(job_file: Path, variant: str, scratch: Path, profile: Path | None = None) -> dict:
    """One variant in a fresh process; its result with the process wall time."""
    result = scratch / f"result-{variant}.json"
    command = [sys.executable, str(CHILD), "--job", str(job_file), "--variant", variant,
               "--result", str(result)]  # fmt: skip
    if profile is not None:
        command += ["--profile", str(profile)]
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=scratch)
    process_s = time.perf_counter() - start
    if done.returncode != 0:
        tail = done.stderr[-3000:]
        sys.exit(f"{job_file.stem} {variant} failed (exit {done.returncode}):\n{tail}")
    record = json.loads(result.read_text("utf-8"))
    record["process_s"] = process_s
    return record


def best(runs: list[dict]) -> dict:
    """Best-of over the repeats (each time independently), tokens from the first run."""
    first = runs[0]
    out = {key: round(min(r[key] for r in runs), 3) for key in TIMES + CPU_TIMES}
    out["import_s"] = round(min(r["import_s"] for r in runs), 3)
    out["tokens"] = first["tokens"]
    out["tokens_per_s"] = round(first["tokens"] / out["train_s"], 1) if out["train_s"] else None
    out["peak_rss_mb"] = round(max(r["peak_rss_mb"] for r in runs), 1)
    out["first_loss"] = first["losses"][0] if first["losses"] else None
    return out


def ratios(stage: dict, bare: dict) -> dict:
    return {key: round(stage[key] / bare[key], 3) for key in TIMES + CPU_TIMES}


def same_losses(stage: list[float], bare: list[float]) -> bool:
    """Both variants logged the same loss series (relative tolerance 1e-4): same model and data."""
    return (
        bool(stage)
        and len(stage) == len(bare)
        and all(abs(s - b) <= 1e-4 * max(1.0, abs(b)) for s, b in zip(stage, bare, strict=True))
    )


def args_differ(stage_runs: list[dict], bare_runs: list[dict]) -> list[str]:
    """Trainer argument names whose values differ between the variants (TRL stages)."""
    a, b = stage_runs[0]["trainer_args"], bare_runs[0]["trainer_args"]
    if a is None or b is None:
        return []
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def _where(key: tuple) -> str:
    file, line, name = key
    short = file.split("site-packages/")[-1] if "site-packages/" in file else file
    if short.startswith(str(ROOT)):
        short = short[len(str(ROOT)) + 1 :]
    return f"{short}:{line}({name})"


def _top_caller(stats: dict, key: tuple) -> str | None:
    callers = stats[key][4]
    if not callers:
        return None
    return _where(max(callers, key=lambda c: callers[c][3]))  # by cumulative time via that caller


def _stage_only(stage: dict, bare: dict) -> list[dict[str, Any]]:
    """Stage-only functions by cumulative time, call chains collapsed: a function carrying >= 80%
    of a stage-only caller's time is folded into that caller (``down_to``: the deepest link)."""
    only = {k for k in stage if k not in bare}
    link = {}
    for key in only:
        parents = [c for c in stage[key][4] if c in only and c != key]
        carried = [c for c in parents if stage[key][3] >= 0.8 * stage[c][3]]
        if carried:
            link[key] = max(carried, key=lambda c: stage[c][3])
    groups: dict[tuple, list[tuple]] = {}
    for key in only:
        root, seen = key, {key}
        while root in link and link[root] not in seen:  # recursion can make cycles
            root = link[root]
            seen.add(root)
        groups.setdefault(root, []).append(key)
    rows = []
    for root, members in sorted(groups.items(), key=lambda item: -stage[item[0]][3])[:TOP]:
        row = {"where": _where(root), "s": round(stage[root][3], 4)}
        deepest = min(members, key=lambda k: stage[k][3])
        if deepest != root:
            row["down_to"] = _where(deepest)
        rows.append(row)
    return rows


def extra_time(stage_stats: Path, bare_stats: Path) -> dict[str, Any]:
    """Where the stage's extra time goes: the functions whose own time grew most over bare (with
    their main caller), and the stage-only functions (absent from the bare call) by cumulative
    time."""
    stage = pstats.Stats(str(stage_stats)).stats  # type: ignore[attr-defined]
    bare = pstats.Stats(str(bare_stats)).stats  # type: ignore[attr-defined]
    grew = sorted(((stage[k][2] - bare.get(k, (0, 0, 0.0))[2], k) for k in stage), reverse=True)[
        :TOP
    ]
    return {
        "self_time_growth_s": [
            {"where": _where(k), "s": round(s, 4), "called_from": _top_caller(stage, k)}
            for s, k in grew
            if round(s, 4) > 0
        ],
        "stage_only_cumulative_s": _stage_only(stage, bare),
    }


def profile(job_file: Path, scratch: Path) -> dict[str, Any]:
    stats = {v: scratch / f"{v}.prof" for v in VARIANTS}
    calls = {v: run_child(job_file, v, scratch, stats[v])["call_s"] for v in VARIANTS}
    return {"profiled_call_s": {v: round(s, 3) for v, s in calls.items()}, **extra_time(
        stats["stage"], stats["bare"]
    )}  # fmt: skip


def measure(
    jobs: list[dict], repeats: int, scratch: Path, profile_mode: str, parallel: int = 1
) -> dict[str, Any]:
    files = {}
    for job in jobs:
        files[job["stage"]] = scratch / f"{job['stage']}.json"
        files[job["stage"]].write_text(json.dumps(job), "utf-8")
    runs: dict[str, dict[str, list]] = {j["stage"]: {v: [] for v in VARIANTS} for j in jobs}
    for repeat in range(repeats):
        order = VARIANTS if repeat % 2 == 0 else VARIANTS[::-1]
        for job in jobs:
            with ThreadPoolExecutor(max_workers=parallel) as pool:  # 2: the pair side by side
                file = files[job["stage"]]
                records = list(pool.map(run_child, [file] * 2, order, [scratch] * 2))
            for variant, record in zip(order, records, strict=True):
                runs[job["stage"]][variant].append(record)
                times = "  ".join(f"{k} {record[k]:6.2f} s" for k in TIMES)
                print(f"{job['stage']:8s} {variant:5s} {times}", flush=True)
    report = {}
    for job in jobs:
        stage_runs, bare_runs = runs[job["stage"]]["stage"], runs[job["stage"]]["bare"]
        entry: dict[str, Any] = {"label": job["label"], "stage": best(stage_runs)}
        entry["bare"] = best(bare_runs)
        entry["ratio"] = ratios(entry["stage"], entry["bare"])
        entry["same_losses"] = same_losses(stage_runs[0]["losses"], bare_runs[0]["losses"])
        entry["same_tokens"] = entry["stage"]["tokens"] == entry["bare"]["tokens"]
        entry["trainer_args_differ"] = args_differ(stage_runs, bare_runs)
        over = max(entry["ratio"]["call_s"], entry["ratio"]["train_s"]) > TARGET
        entry["within_target"] = not over
        if profile_mode == "always" or (over and profile_mode == "auto"):
            entry["profile"] = profile(files[job["stage"]], scratch)
        report[job["stage"]] = entry
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, help="a finished run (default: run micro once)")
    parser.add_argument(
        "--recipe", type=Path, default=MICRO,
        help="the recipe whose training jobs run (default config/micro.yaml; another needs "
        "--workspace)",
    )  # fmt: skip
    parser.add_argument("--repeats", type=int, default=3, help="rounds per variant (best of)")
    parser.add_argument("--output", type=Path, default=RESULT)
    parser.add_argument(
        "--jobs", type=int, choices=(1, 2), default=1,
        help="2: a job's stage and bare variants run side by side (halves the wall time; both "
        "share the same contention)",
    )  # fmt: skip
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    parser.add_argument(
        "--profile", choices=("auto", "always", "never"), default="auto",
        help=f"cProfile both variants of a stage over {TARGET}x bare (auto), always or never",
    )  # fmt: skip
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats: at least 1")
    if args.recipe.resolve() != MICRO and args.workspace is None:
        parser.error(f"--recipe {args.recipe}: pass --workspace, a run of that recipe")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="reprolm-bench-training-") as scratch:
        workspace = args.workspace
        if workspace is None:
            workspace = Path(scratch) / "ws"
            sys.path.insert(0, str(Path(__file__).resolve().parent))
            from workflow_stages import run_workflow  # the benchmarks' one workflow runner

            run_workflow(MICRO, workspace, cores=2)
        jobs = training_jobs(args.recipe, workspace.resolve(), args.stages)
        stages = measure(jobs, args.repeats, Path(scratch), args.profile, args.jobs)
    threads = sorted({job["config"]["threads"] for job in jobs})
    report = {
        "benchmark": "training",
        "recipe": recipe_name(args.recipe),
        "repeats": args.repeats,
        "parallel": args.jobs,
        "target_ratio": TARGET,
        "machine": {
            "cpu_model": cpu_model(),
            "cpu_count": os.cpu_count(),
            "threads": threads[0] if len(threads) == 1 else threads,
            "load_average_1m": round(os.getloadavg()[0], 2),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "packages": package_versions(("torch", "transformers", "trl")),
        },
        "stages": stages,
        "all_within_target": all(entry["within_target"] for entry in stages.values()),
        "benchmark_wall_s": round(time.perf_counter() - started, 1),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(dump_json(report))
    for name, entry in stages.items():
        print(f"{name:8s} stage/bare train {entry['ratio']['train_s']:.3f} (CPU "
              f"{entry['ratio']['train_cpu_s']:.3f})  call "
              f"{entry['ratio']['call_s']:.3f}  process {entry['ratio']['process_s']:.3f}  "
              f"same losses {entry['same_losses']}")  # fmt: skip
    print(f"-> {args.output} ({report['benchmark_wall_s']} s)")


if __name__ == "__main__":
    main()
