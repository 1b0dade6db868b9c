"""The cost of the pinned numeric code path: the recipe's workflow twice in one run, pinned
(the default: ATen AVX2, MKL CNR AVX2 strict, oneDNN/OpenBLAS capped at AVX2; reprolm.numerics)
and native (``REPROLM_NUMERICS=native``: the machine's own dispatch), each in a fresh working
directory; wall seconds per job and the ratio, plus whether the payload digests differ (they do:
the pin is a different code path, identical on every x86-64 machine with AVX2).

    python benchmarks/numerics.py --recipe config/micro.yaml

``--keep-pinned DIR`` keeps the pinned run's working directory (DIR must not exist), e.g. for
``benchmarks/reference_records.py write --workdir DIR``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from pathlib import Path

from workflow_stages import collect, run_workflow  # the sibling benchmark (run as a script)

from reprolm.environment import cpu_model
from reprolm.manifest import read_manifest
from reprolm.numerics import ESCAPE_VARIABLE, cpu_flags
from reprolm.plan import load_plan

ROOT = Path(__file__).resolve().parents[1]


def timed_run(recipe: Path, workdir: Path, cores: int, native: bool) -> dict:
    """One workflow run; per job key: wall seconds and payload digest."""
    previous = os.environ.pop(ESCAPE_VARIABLE, None)
    if native:
        os.environ[ESCAPE_VARIABLE] = "native"
    try:
        total = run_workflow(recipe, workdir, cores)
    finally:
        os.environ.pop(ESCAPE_VARIABLE, None)
        if previous is not None:
            os.environ[ESCAPE_VARIABLE] = previous
    jobs = {f"{j['stage']}/{j['label']}": j["wall_seconds"] for j in collect(recipe, workdir)}
    plan = load_plan(recipe)
    digests = {
        job.key: read_manifest(workdir / job.artifact_dir)["digest"] for job in plan.jobs.values()
    }
    return {"workflow_wall_seconds": round(total, 2), "jobs": jobs, "digests": digests}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipe", type=Path, default=ROOT / "config/micro.yaml")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--output", type=Path, help="JSON path (default benchmarks/results/)")
    parser.add_argument("--keep-pinned", type=Path, help="run the pinned workflow here (kept)")
    args = parser.parse_args()
    if args.keep_pinned and args.keep_pinned.exists():
        parser.error(f"--keep-pinned {args.keep_pinned}: already exists")
    with tempfile.TemporaryDirectory(prefix="reprolm-numerics-") as scratch:
        pinned_dir = args.keep_pinned or Path(scratch) / "pinned"
        pinned = timed_run(args.recipe, pinned_dir, args.cores, native=False)
        native = timed_run(args.recipe, Path(scratch) / "native", args.cores, native=True)
    rows = {
        key: {
            "pinned_s": pinned["jobs"][key],
            "native_s": native["jobs"][key],
            "ratio": round(pinned["jobs"][key] / native["jobs"][key], 3),
            "same_digest": pinned["digests"][key] == native["digests"][key],
        }
        for key in sorted(pinned["jobs"])
    }
    result = {
        "benchmark": "numerics",
        "recipe": args.recipe.stem,
        "cores": args.cores,
        "machine": {
            "cpu": cpu_model(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "isa_flags": " ".join(flag for flag, have in cpu_flags().items() if have),
        },
        "workflow_wall_seconds": {
            "pinned": pinned["workflow_wall_seconds"],
            "native": native["workflow_wall_seconds"],
        },
        "jobs": rows,
    }
    out = args.output or ROOT / "benchmarks" / "results" / f"numerics-{args.recipe.stem}.json"
    out.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
