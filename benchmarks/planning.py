"""Benchmark planning a sharded curation: `snakemake -n` on the micro recipe with
`curate.shards` = 100, 1,000 and 10,000 (the issue's target: 10,000 shards planned in < 10 s on
2 cores), batched as by default (at most 128 curate_shard jobs) and at the most jobs a plan
allows (1,000: `shards_per_job` = ceil(shards / 1000), one job per shard up to 1,000 shards).

Each measurement is one fresh `snakemake -n` subprocess in an empty work directory (so nothing
is cached): wall time, and peak RSS from the child's rusage. Writes
benchmarks/results/planning.json.

    python benchmarks/planning.py [--shards 100 1000 10000]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from reprolm.environment import cpu_model, package_versions
from reprolm.fanout import MAX_SHARD_JOBS

ROOT = Path(__file__).resolve().parents[1]
MICRO = ROOT / "config" / "micro.yaml"


def plan_once(workdir: Path, shards: int, per_job: int | None) -> dict:
    """One `snakemake -n` of the micro recipe with ``shards`` shards."""
    recipe = yaml.safe_load(MICRO.read_text(encoding="utf-8"))
    recipe["curate"] = {**recipe.get("curate", {}), "shards": shards, "shards_per_job": per_job}
    recipe_path = workdir / "recipe.yaml"
    recipe_path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    command = [
        sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
        "--directory", str(workdir), "--cores", "2", "--configfile", str(recipe_path),
        "-n", "--quiet", "rules",
    ]  # fmt: skip
    out, err = workdir / "stdout", workdir / "stderr"
    start = time.perf_counter()
    with out.open("w") as stdout, err.open("w") as stderr:
        child = subprocess.Popen(command, stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(child.pid, 0)  # this child's own peak RSS
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"snakemake -n failed ({shards} shards):\n{err.read_text()[-3000:]}")
    lines = out.read_text().splitlines()
    jobs = next((int(line.split()[1]) for line in lines if line.startswith("total")), None)
    return {
        "shards": shards,
        "shards_per_job": per_job,
        "jobs": jobs,
        "wall_seconds": round(wall, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks/results/planning.json")
    args = parser.parse_args()
    runs = []
    cases = [(n, None) for n in args.shards]
    cases += [(n, math.ceil(n / MAX_SHARD_JOBS)) for n in args.shards]
    for shards, per_job in cases:
        with tempfile.TemporaryDirectory(prefix="reprolm-plan-") as tmp:
            runs.append(plan_once(Path(tmp), shards, per_job))
        print(json.dumps(runs[-1]))
    result = {
        "benchmark": "planning",
        "recipe": "micro + curate.shards",
        "command": "snakemake -n --quiet rules (fresh work directory per run)",
        "target": "10,000 shards planned in under 10 s on a 2-core machine",
        "runs": runs,
        "machine": {
            "cpu_model": cpu_model(),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "packages": package_versions(("snakemake",)),
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"-> {args.output}")


if __name__ == "__main__":
    main()
