"""Benchmark ``reprolm audit`` on a lineage holding a >= 1 GiB checkpoint.

Copies a finished micro lineage (``--workspace``: a directory holding ``artifacts/`` from a run of
the micro recipe; by default the micro recipe is run once into a temp dir), replaces the
release's ``model/model.safetensors`` by N GiB of random bytes and re-writes the release manifest
to match (so the audit is clean and re-hashes the big file), then times:

* ``cold``: one audit after evicting the big file from the page cache (posix_fadvise
  DONTNEED on the clean pages: no root needed; the disk read is then part of the figure);
* ``warm``: ``--repeats`` audits with the file in the page cache (hashing speed alone);
* ``hash_file``: ``reprolm.hashing.hash_file`` of the big file alone (warm), for reference;
* ``cli``: one ``reprolm audit --json`` subprocess (adds interpreter and import start-up).

Everything happens in a temp dir that is deleted afterwards. Writes JSON to
benchmarks/results/audit.json.

    python benchmarks/audit.py [--workspace DIR] [--size-gib 1] [--repeats 3]
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

from reprolm.audit import audit
from reprolm.canonical import dump_json
from reprolm.environment import cpu_model
from reprolm.hashing import MANIFEST_NAME, hash_file, payload_digest
from reprolm.plan import load_plan

ROOT = Path(__file__).resolve().parents[1]
MICRO = ROOT / "config" / "micro.yaml"
CHECKPOINT = "model/model.safetensors"
CHUNK = 1 << 24


def run_micro(workdir: Path) -> None:
    command = [
        sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
        "--directory", str(workdir), "--profile", str(ROOT / "workflow/profiles/local"),
        "--cores", "2", "--configfile", str(MICRO), "--quiet", "all",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"micro workflow failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def write_random(path: Path, size: int) -> None:
    with open(path, "wb") as handle:
        left = size
        while left:
            block = os.urandom(min(CHUNK, left))
            handle.write(block)
            left -= len(block)
        handle.flush()
        os.fsync(handle.fileno())


def evict(path: Path) -> None:
    """Drop the file's (clean) pages from the page cache."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def rewrite_manifest(artifact: Path, rel: str) -> None:
    """Record the replaced file's hash and size, and the payload's new digest."""
    manifest = json.loads((artifact / MANIFEST_NAME).read_text(encoding="utf-8"))
    path = artifact / rel
    manifest["files"][rel] = {"hash": hash_file(path), "size": path.stat().st_size}
    manifest["digest"] = payload_digest(manifest["files"])
    (artifact / MANIFEST_NAME).write_text(dump_json(manifest), encoding="utf-8")


def timed_audit(release: Path) -> dict:
    report = audit(release)
    if report.problems or report.missing:
        sys.exit(f"audit not clean: {report.problems + report.missing}")
    gib = report.bytes_hashed / 2**30
    return {
        "wall_seconds": round(report.wall_seconds, 3),
        "hash_seconds": round(report.hash_seconds, 3),
        "gib_hashed": round(gib, 4),
        "throughput_gib_s": round(gib / report.hash_seconds, 3),
        "nodes": len(report.nodes),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, help="directory holding a micro run's artifacts/")
    parser.add_argument("--size-gib", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks/results/audit.json")
    args = parser.parse_args()
    plan = load_plan(MICRO)
    with tempfile.TemporaryDirectory(prefix="reprolm-audit-bench-") as temp:
        work = Path(temp)
        if args.workspace is None:
            run_micro(work / "source")
            source = work / "source"
        else:
            source = args.workspace
        shutil.copytree(source / "artifacts", work / "ws" / "artifacts")
        release = work / "ws" / plan.release.artifact_dir
        size = int(args.size_gib * 2**30)
        write_random(release / CHECKPOINT, size)
        rewrite_manifest(release, CHECKPOINT)
        evict(release / CHECKPOINT)
        cold = timed_audit(release)
        warm = [timed_audit(release) for _ in range(args.repeats)]
        started = time.perf_counter()
        hash_file(release / CHECKPOINT)
        hash_seconds = time.perf_counter() - started
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "reprolm.cli", "audit", "--json", str(release)],
            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        cli_seconds = time.perf_counter() - started
        if done.returncode != 0:
            sys.exit(f"reprolm audit failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    result = {
        "benchmark": "audit",
        "lineage": "micro recipe release (12 artifacts) with the release checkpoint replaced",
        "checkpoint_bytes": size,
        "cold": cold,
        "warm": warm,
        "warm_best_wall_seconds": min(w["wall_seconds"] for w in warm),
        "hash_file_warm": {
            "seconds": round(hash_seconds, 3),
            "throughput_gib_s": round(size / 2**30 / hash_seconds, 3),
        },
        "cli_wall_seconds": round(cli_seconds, 3),
        "machine": {
            "cpu_model": cpu_model(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
