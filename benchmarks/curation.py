"""Curation throughput and peak RSS: our filters, MinHash fuzzy dedup and decontamination
against datatrove's own pipelines on the same generated corpus.

Generates (seeded) a JSONL corpus of the largest ``--sizes-mb`` (smaller sizes are prefixes of
it) and GSM8K-like eval sets of ``--instances`` (prefixes too), see ``curation_data.py``. Then
runs each measurement in a fresh subprocess pinned to one core (``sched_setaffinity``): per
component (``read``, ``filters``, ``minhash``, ``decont``) and implementation (``ours``:
``curation_ours.py``, ``datatrove``: ``curation_datatrove.py``) at every corpus size (decont at
the middle eval size), plus decont at every eval size on the middle corpus size. Figures: MB/s of
document text (MB = 2^20 bytes of UTF-8 text) per CPU-second and per wall-second, and peak RSS
(``ru_maxrss`` of the subprocess). ``--jobs 2`` runs two measurements at once on two cores.
Writes JSON to benchmarks/results/curation.json; the corpus lives in a temp dir, deleted after.

    python benchmarks/curation.py                                   # 256 512 1024 MB, 1k 4k 16k
    python benchmarks/curation.py --sizes-mb 16 --instances 200     # CI size, ~1-2 min
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import curation_data

ROOT = Path(__file__).resolve().parents[1]
COMPONENTS = ("read", "filters", "minhash", "decont")
# datatrove: its blocks with the offline nltk word tokenizer (= its nltk path); datatrove_split:
# the same blocks with a whitespace word tokenizer (minhash and decont only: same words there)
IMPLS = ("ours", "datatrove", "datatrove_split")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", "--size-mb", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--instances", type=int, nargs="+", default=[1000, 4000, 16000])
    sized = "corpus sizes of the %s measurements (default: --sizes-mb)"
    parser.add_argument("--filters-sizes-mb", type=int, nargs="+", help=sized % "filters")
    parser.add_argument("--datatrove-sizes-mb", type=int, nargs="+", help=sized % "datatrove")
    parser.add_argument("--split-sizes-mb", type=int, nargs="+", help=sized % "datatrove_split")
    parser.add_argument("--eval-scaling-mb", type=int, help="corpus size of the eval-size sweep")
    parser.add_argument("--eval-scaling-impls", nargs="+", default=list(IMPLS), choices=IMPLS)
    parser.add_argument("--file-mb", type=int, default=16, help="MiB of text per corpus file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--jobs", type=int, default=min(2, len(os.sched_getaffinity(0))),
        help="measurements at once, each pinned to its own core (default: 2 if there are 2)",
    )  # fmt: skip
    parser.add_argument("--components", nargs="+", default=list(COMPONENTS), choices=COMPONENTS)
    parser.add_argument("--impls", nargs="+", default=list(IMPLS), choices=IMPLS)
    parser.add_argument("--why", default="", help="a note on the chosen grid, kept in the result")
    parser.add_argument("--workdir", type=Path, help="kept (and reused) instead of a temp dir")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks/results/curation.json")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.filters_sizes_mb = args.filters_sizes_mb or args.sizes_mb
    args.datatrove_sizes_mb = args.datatrove_sizes_mb or args.sizes_mb
    args.split_sizes_mb = args.split_sizes_mb or args.sizes_mb
    args.eval_scaling_mb = args.eval_scaling_mb or middle(args.sizes_mb)
    return args


def middle(values: list[int]) -> int:
    return sorted(values)[len(values) // 2]


def all_sizes(args: argparse.Namespace) -> list[int]:
    extra = args.filters_sizes_mb + args.datatrove_sizes_mb + args.split_sizes_mb
    return sorted({*args.sizes_mb, *extra, args.eval_scaling_mb})


def prepare(args: argparse.Namespace, work: Path) -> dict:
    """Write (or reuse) the corpus and one directory of links per size."""
    manifest_path = work / "corpus.json"
    sizes = all_sizes(args)
    top, file_mb = max(sizes), min(args.file_mb, min(sizes))
    key = {"seed": args.seed, "size_mb": top, "file_mb": file_mb, "pool": max(args.instances)}
    if manifest_path.exists() and json.loads(manifest_path.read_text())["key"] == key:
        return json.loads(manifest_path.read_text())
    shutil.rmtree(work / "files", ignore_errors=True)
    started = time.perf_counter()
    instances = curation_data.eval_set(max(args.instances), args.seed)
    files, plants = curation_data.write_corpus(work / "files", top, file_mb, instances, args.seed)
    manifest = {"key": key, "generate_s": round(time.perf_counter() - started, 1), "sizes": {}}
    manifest["eval_plants"] = sorted(  # [doc index, instance index]
        [doc, int(uid.rsplit("-", 1)[1])] for doc, uid in plants.eval_items.items()
    )
    for size in sizes:
        chosen = files[: -(-size // file_mb)]
        folder = work / f"size-{size}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        for entry in chosen:
            (folder / Path(entry["path"]).name).symlink_to(entry["path"])
        last_doc = sum(f["docs"] for f in chosen)
        manifest["sizes"][str(size)] = {
            "dir": str(folder),
            "files": len(chosen),
            "docs": last_doc,
            "text_bytes": sum(f["text_bytes"] for f in chosen),
            "file_bytes": sum(f["file_bytes"] for f in chosen),
            "planted": {
                "near_duplicates": sum(d < last_doc for d in plants.near_duplicates),
                "eval_docs": sum(d < last_doc for d in plants.eval_items),
                "eval_instances": len({u for d, u in plants.eval_items.items() if d < last_doc}),
                "low_quality": sum(d < last_doc for d in plants.low_quality),
            },
        }
    manifest_path.write_text(json.dumps(manifest, indent=1))
    return manifest


def plan(args: argparse.Namespace) -> list[dict]:
    """Every (component, impl, size, instances) to measure, largest first."""
    eval_mid, runs = middle(args.instances), []
    sizes = {"ours": args.sizes_mb, "datatrove": args.datatrove_sizes_mb,
             "datatrove_split": args.split_sizes_mb}  # fmt: skip
    for component in args.components:
        for impl in args.impls:
            if impl == "datatrove_split" and component not in ("minhash", "decont"):
                continue
            chosen = set(args.filters_sizes_mb if component == "filters" else sizes[impl])
            counts = [eval_mid] if component == "decont" else [0]
            for size in chosen:
                runs += [{"component": component, "impl": impl, "size_mb": size, "instances": n}
                         for n in counts]  # fmt: skip
            if component == "decont" and impl in args.eval_scaling_impls:
                others = sorted(set(args.instances) - {eval_mid})
                runs += [{"component": component, "impl": impl, "size_mb": args.eval_scaling_mb,
                          "instances": n} for n in others]  # fmt: skip
    return sorted(runs, key=lambda r: -cost(r))


# rough CPU seconds per MB (2 vCPU Xeon, 2026-12): to start the longest runs first
COST = {"read": 0.01, "filters": 4.4}
COST |= {
    f"minhash/{i}": c for i, c in (("ours", 0.24), ("datatrove", 0.9), ("datatrove_split", 0.4))
}
COST |= {
    f"decont/{i}": c for i, c in (("ours", 0.07), ("datatrove", 0.75), ("datatrove_split", 0.22))
}


def cost(run: dict) -> float:
    """Rough CPU seconds of a run (longest first packs the cores best)."""
    per_mb = COST.get(run["component"]) or COST[f"{run['component']}/{run['impl']}"]
    return per_mb * run["size_mb"]


def launch(run: dict, core: int, work: Path, manifest: dict, seed: int) -> subprocess.Popen:
    name = f"{run['component']}-{run['impl']}-{run['size_mb']}-{run['instances']}"
    folder = work / "runs" / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    spec = {**run, "core": core, "seed": seed, "work": str(folder),
            "corpus": manifest["sizes"][str(run["size_mb"])]["dir"]}  # fmt: skip
    (folder / "spec.json").write_text(json.dumps(spec))
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'benchmarks'}"}
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", str(folder / "spec.json")]
    with open(folder / "log.txt", "w") as log:  # the child keeps its own descriptor
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)


def run_all(runs: list[dict], cores: list[int], work: Path, manifest: dict, seed: int) -> list:
    """Run the measurements, at most len(cores) at once, each pinned to a free core."""
    pending, active, results = list(runs), {}, []
    while pending or active:
        while pending and len(active) < len(cores):
            core = next(c for c in cores if c not in active)
            active[core] = (pending[0], launch(pending.pop(0), core, work, manifest, seed))
        time.sleep(0.2)
        for core, (run, process) in list(active.items()):
            if process.poll() is None:
                continue
            del active[core]
            folder = work / "runs" / Path(process.args[-1]).parent.name
            if process.returncode != 0:
                tail = (folder / "log.txt").read_text()[-3000:]
                sys.exit(f"measurement {run} failed (rc {process.returncode}):\n{tail}")
            results.append(json.loads((folder / "result.json").read_text()))
            print(summary_line(results[-1]), flush=True)
    return results


def summary_line(result: dict) -> str:
    rate = result["mb_per_cpu_s"]  # None when the measured CPU time was 0
    rate_text = f"{rate:7.2f}" if rate is not None else "    n/a"
    return (
        f"{result['component']:8s} {result['impl']:9s} {result['size_mb']:5d} MB "
        f"{result['instances']:6d} inst  {rate_text} MB/cpu-s  "
        f"{result['wall_s']:8.1f} s  {result['peak_rss_mb']:7.1f} MB RSS"
    )


def vm_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def worker(spec_path: Path) -> None:
    """One measurement in this fresh process, pinned to the spec's core."""
    spec = json.loads(spec_path.read_text())
    os.sched_setaffinity(0, {spec["core"]})
    import curation_datatrove
    import curation_ours

    impl, component = spec["impl"], spec["component"]
    module = curation_ours if impl == "ours" else curation_datatrove
    instances = curation_data.eval_set(spec["instances"], spec["seed"])
    preload(impl, component)
    tokenizer = None
    if impl == "datatrove" and component != "read":
        tokenizer = curation_datatrove.offline_tokenizer()
    elif impl == "datatrove_split":
        tokenizer = curation_datatrove.split_tokenizer()
    rss_start = vm_rss_mb()
    before, started = curation_data.cpu_seconds(), time.perf_counter()
    details = getattr(module, component)(
        corpus=Path(spec["corpus"]), work=Path(spec["work"]), tokenizer=tokenizer,
        instances=instances,
    )  # fmt: skip
    wall, cpu = time.perf_counter() - started, curation_data.cpu_seconds() - before
    sizes = json.loads((Path(spec["work"]).parents[1] / "corpus.json").read_text())["sizes"]
    text_mb = sizes[str(spec["size_mb"])]["text_bytes"] / curation_data.MIB
    result = {
        **{k: spec[k] for k in ("component", "impl", "size_mb", "instances", "core")},
        "affinity": sorted(os.sched_getaffinity(0)),
        "text_mb": round(text_mb, 2),
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "mb_per_cpu_s": round(text_mb / cpu, 3) if cpu else None,
        "mb_per_wall_s": round(text_mb / wall, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_start_mb": round(rss_start, 1),
        **details,
    }
    (spec_path.parent / "result.json").write_text(json.dumps(result, indent=1))


def preload(impl: str, component: str) -> None:
    """Import what the measured code imports before the clock starts (and only that, so the
    peak RSS is the component's)."""
    import importlib

    modules = {
        "read": ["datatrove.executor", "datatrove.pipeline.readers"],
        "filters": ["datatrove.executor", "datatrove.pipeline.readers",
                    "datatrove.pipeline.filters", "stages.curate.wordtok"],
        "minhash": ["datatrove.executor", "datatrove.pipeline.readers",
                    "datatrove.pipeline.dedup.minhash"],
        "decont": ["datatrove.executor", "datatrove.pipeline.readers",
                   "datatrove.pipeline.decont"],
    }[component]  # fmt: skip
    if impl == "ours":
        ours = {"read": [], "filters": ["stages.curate.filters"],
                "minhash": ["stages.curate.minhash", "xxhash", "scipy.sparse.csgraph"],
                "decont": ["stages.curate.decontaminate"]}[component]  # fmt: skip
        modules = ours + (modules[2:] if component == "filters" else [])
    for name in modules:
        importlib.import_module(name)


def main() -> None:
    args = parse_args()
    if args.worker:
        return worker(args.worker)
    from curation_report import write_result

    cores = sorted(os.sched_getaffinity(0))[: max(1, args.jobs)]
    temp = None if args.workdir else tempfile.mkdtemp(prefix="reprolm-curation-bench-")
    work = args.workdir or Path(temp)
    work.mkdir(parents=True, exist_ok=True)
    try:
        started = time.perf_counter()
        manifest = prepare(args, work)
        results = run_all(plan(args), cores, work, manifest, args.seed)
        write_result(args, manifest, results, cores, time.perf_counter() - started)
    finally:
        if temp:
            shutil.rmtree(temp, ignore_errors=True)


if __name__ == "__main__":
    main()
