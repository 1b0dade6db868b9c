"""Benchmark ``reprolm rebuild --verify``: the cost of reading the bytes first.

Since issue 11 a rebuild re-hashes the artifact on disk against its manifest before it re-runs
the job (a tampered artifact is never reported as reproduced). For every job of a finished micro
run (``--workspace``: a directory holding ``artifacts/`` from the micro recipe; by default the
micro recipe is run once into a temp dir) this times:

* ``verify_s``: the on-disk check alone (``reprolm.manifest.verify_payload``, in process);
* ``rebuild_s``: one ``reprolm rebuild --verify --json`` subprocess (check + re-run + compare);

and reports the check's share of the rebuild. Writes JSON to benchmarks/results/rebuild-micro.json.

    python benchmarks/rebuild.py [--workspace DIR] [--output FILE] [--stages world pretrain]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from reprolm.canonical import dump_json
from reprolm.environment import cpu_model
from reprolm.manifest import read_manifest, verify_payload
from reprolm.plan import load_plan

ROOT = Path(__file__).resolve().parents[1]
MICRO = ROOT / "config" / "micro.yaml"
RESULT = ROOT / "benchmarks" / "results" / "rebuild-micro.json"


def time_job(workspace: Path, artifact: Path) -> dict:
    manifest = read_manifest(artifact)
    start = time.perf_counter()
    problems = verify_payload(artifact, manifest)
    verify_s = time.perf_counter() - start
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "reprolm.cli", "rebuild", "--verify", "--json", str(artifact)],
        cwd=workspace, capture_output=True, text=True,
    )  # fmt: skip
    rebuild_s = time.perf_counter() - start
    result = json.loads(done.stdout) if done.stdout.strip() else {"error": done.stderr[-500:]}
    return {
        "stage": manifest["stage"],
        "payload_bytes": sum(record["size"] for record in manifest["files"].values()),
        "verify_s": round(verify_s, 4),
        "rebuild_s": round(rebuild_s, 2),
        "verify_share": round(verify_s / rebuild_s, 5) if rebuild_s else None,
        "intact": not problems,
        "bit_identical": bool(result.get("ok")) and result.get("differing_files") == [],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, help="a finished micro run (default: run one)")
    parser.add_argument("--output", type=Path, default=RESULT)
    parser.add_argument("--stages", nargs="+", help="only these stages' jobs (default: every job)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="reprolm-bench-rebuild-") as scratch:
        workspace = args.workspace
        if workspace is None:
            workspace = Path(scratch) / "ws"
            from workflow_stages import run_workflow  # the benchmarks' one workflow runner

            run_workflow(MICRO, workspace, cores=2)
        workspace = workspace.resolve()
        plan = load_plan(MICRO)
        chosen = [j for j in plan.jobs.values() if not args.stages or j.stage in args.stages]
        if not chosen:
            parser.error(f"--stages {args.stages}: no job of config/micro.yaml has those stages")
        jobs = {job.key: time_job(workspace, workspace / job.artifact_dir) for job in chosen}
    verify = sum(job["verify_s"] for job in jobs.values())
    rebuild = sum(job["rebuild_s"] for job in jobs.values())
    report = {
        "benchmark": "rebuild-verify",
        "recipe": "config/micro.yaml",
        "stages": args.stages or "all",
        "machine": {
            "cpu_model": cpu_model(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
        },
        "jobs": jobs,
        "total": {
            "verify_s": round(verify, 3),
            "rebuild_s": round(rebuild, 2),
            "verify_share": round(verify / rebuild, 5) if rebuild else None,
        },
        "all_bit_identical": all(job["bit_identical"] for job in jobs.values()),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(dump_json(report))
    print(json.dumps(report["total"]), "all bit-identical:", report["all_bit_identical"])


if __name__ == "__main__":
    main()
