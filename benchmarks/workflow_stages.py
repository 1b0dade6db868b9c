"""Time the recipe's workflow per stage: wall seconds, CPU seconds and peak RSS per job.

Runs real Snakemake on a recipe in a fresh working directory (so nothing is cached), then reads
each job's manifest (the runner records wall/CPU time and peak RSS of the job's process) and the
whole run's wall time, including per-job process start-up. Writes JSON to
benchmarks/results/workflow-<recipe>.json. Not a test: run it on demand (`make bench`) and in CI
at micro size.

    python benchmarks/workflow_stages.py --recipe config/micro.yaml
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reprolm.environment import cpu_model, package_versions
from reprolm.manifest import read_manifest
from reprolm.plan import load_plan

ROOT = Path(__file__).resolve().parents[1]


def run_workflow(recipe: Path, workdir: Path, cores: int) -> float:
    """Run the whole DAG in ``workdir``; return its wall seconds."""
    command = [
        sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
        "--directory", str(workdir), "--profile", str(ROOT / "workflow/profiles/local"),
        "--cores", str(cores), "--configfile", str(recipe.resolve()), "--quiet", "all",
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"workflow failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


def collect(recipe: Path, workdir: Path) -> list[dict]:
    jobs = []
    for job in load_plan(recipe).jobs.values():
        manifest = read_manifest(workdir / job.artifact_dir)
        execution = manifest["execution"]
        jobs.append(
            {
                "stage": job.stage,
                "label": job.label,
                "wall_seconds": execution["wall_seconds"],
                # Before and after the job's clock, inside the job's process (None: older run).
                "startup_seconds": execution.get("startup_seconds"),
                "manifest_seconds": execution.get("manifest_seconds"),
                "cpu_seconds": execution["cpu_seconds"],
                "peak_rss_mb": execution["peak_rss_mb"],
                "threads": job.config["threads"],
                "payload_bytes": sum(f["size"] for f in manifest["files"].values()),
            }
        )
    return jobs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipe", type=Path, default=ROOT / "config/tiny.yaml")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--output", type=Path, help="JSON path (default benchmarks/results/)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch working directory")
    parser.add_argument("--workdir", type=Path, help="run here (kept) instead of a scratch dir")
    parser.add_argument(
        "--collect", type=Path, help="only read the manifests of a finished run in this directory"
    )
    parser.add_argument("--total-seconds", type=float, help="with --collect: the run's wall time")
    args = parser.parse_args()
    if args.collect:
        write_result(args, collect(args.recipe, args.collect), args.total_seconds)
        return

    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=False)
        args.keep = True
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="reprolm-bench-"))
    try:
        total = run_workflow(args.recipe, workdir, args.cores)
        jobs = collect(args.recipe, workdir)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    write_result(args, jobs, total)


def overhead(jobs: list[dict], total: float | None) -> dict:
    """Where the workflow's time beyond its jobs' clocks goes: each job process's start-up and
    manifest writing, and the rest (Snakemake's scheduling, process spawn and exit, the report
    rule, the DVC commit). The jobs run one at a time at threads = cores, so times add up."""
    start = sum(j["startup_seconds"] or 0.0 for j in jobs)
    manifest = sum(j["manifest_seconds"] or 0.0 for j in jobs)
    jobs_wall = sum(j["wall_seconds"] for j in jobs)
    result = {
        "sum_startup_seconds": round(start, 1),
        "sum_manifest_seconds": round(manifest, 1),
        "overhead_ratio": round(total / jobs_wall, 3) if total and jobs_wall else None,
    }
    if total is not None:
        result["outside_job_processes_seconds"] = round(total - jobs_wall - start - manifest, 1)
    return result


def write_result(args: argparse.Namespace, jobs: list[dict], total: float | None) -> None:
    result = {
        "benchmark": "workflow_stages",
        "recipe": args.recipe.name,
        "cores": args.cores,
        "workflow_wall_seconds": round(total, 1) if total is not None else None,
        "sum_job_wall_seconds": round(sum(j["wall_seconds"] for j in jobs), 1),
        **overhead(jobs, total),
        "max_peak_rss_mb": max(j["peak_rss_mb"] for j in jobs),
        "jobs": jobs,
        "machine": {
            "cpu_model": cpu_model(),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "packages": package_versions(("torch", "transformers", "trl", "lm_eval", "snakemake")),
        },
    }
    output = args.output or ROOT / "benchmarks/results" / f"workflow-{args.recipe.stem}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    width = max(len(f"{j['stage']}/{j['label']}") for j in jobs)
    for job in jobs:
        name = f"{job['stage']}/{job['label']}"
        start, manifest = job["startup_seconds"] or 0.0, job["manifest_seconds"] or 0.0
        print(
            f"{name:{width}s}  {job['wall_seconds']:7.1f} s  (+{start:4.1f} s start-up, "
            f"+{manifest:4.1f} s manifest)  {job['peak_rss_mb']:7.1f} MB"
        )
    print(
        f"workflow total {total} s (jobs {result['sum_job_wall_seconds']} s, start-up "
        f"{result['sum_startup_seconds']} s, manifests {result['sum_manifest_seconds']} s, "
        f"ratio {result['overhead_ratio']}) -> {output}"
    )


if __name__ == "__main__":
    main()
