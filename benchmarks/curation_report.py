"""The JSON result of ``benchmarks/curation.py``: every measurement, the ours/datatrove table,
the scaling series, the sanity checks against what was planted, the machine and the command."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

from reprolm.environment import cpu_model, package_versions

IMPLS = ("ours", "datatrove", "datatrove_split")
FIGURES = ("_mb_per_cpu_s", "_peak_rss_mb", *(f"_over_{n}" for n in IMPLS[1:]))
PACKAGES = ("datatrove", "numpy", "xxhash", "nltk", "regex", "zstandard")
NOTES = [
    "MB = 2^20 bytes of UTF-8 document text (the JSONL files are ~2 % larger).",
    "mb_per_cpu_s: text MB / (user + system CPU seconds of the pinned measurement process"
    " and its children); the per-core figure. mb_per_wall_s: the same over wall seconds.",
    "ratio = ours / datatrove on decision_cpu_s (> 1: ours faster). minhash: datatrove's"
    " decision is signature + buckets + cluster; its MinhashDedupFilter pass (re-reading the"
    " corpus to drop the duplicates) is in stages_s but not in the ratio. filters and"
    " decont: the whole measurement, reading included on both sides.",
    "datatrove's word tokenizer (nltk/spaCy) needs a model download that cannot happen"
    " here: its blocks get the offline WordTokenizer of stages/curate/filters.py"
    " (language=<instance>).",
    "datatrove decont: NGramsDecontIndexer.run() imports lighteval (not installed), so its"
    " compute_hashes(answer, question) is called directly (instance made with"
    " object.__new__, skipping the dependency check) and <task>.index.hashes written as"
    " run() writes it; NGramsDecontFilter then loads that index itself. It removes a"
    " document on any 8-gram hit (stops at the first); ours scores every instance's token"
    " coverage over every document n-gram (exhaustive) and removes at >= threshold.",
    "peak_rss_mb: ru_maxrss of the fresh measurement process (imports and the eval set"
    " included; rss_start_mb is its RSS just before the clock starts).",
]


def ratio(ours: dict | None, theirs: dict | None) -> float | None:
    if not ours or not theirs or not ours["decision_cpu_s"]:
        return None
    return round(theirs["decision_cpu_s"] / ours["decision_cpu_s"], 3)


def per_mb(result: dict) -> float | None:
    seconds = result["decision_cpu_s"]
    return round(result["text_mb"] / seconds, 3) if seconds else None


def table(results: list[dict]) -> list[dict]:
    """One row per (component, size, instances): the implementations side by side."""
    by_key: dict[tuple, dict] = {}
    for r in results:
        by_key.setdefault((r["component"], r["size_mb"], r["instances"]), {})[r["impl"]] = r
    rows = []
    for (component, size, instances), impls in sorted(by_key.items()):
        row = {"component": component, "size_mb": size, "instances": instances}
        for name in IMPLS:
            if r := impls.get(name):
                row[f"{name}_mb_per_cpu_s"] = per_mb(r)
                row[f"{name}_peak_rss_mb"] = r["peak_rss_mb"]
                row[f"{name}_docs_out"] = r["docs_out"]
        for name in IMPLS[1:]:
            if name in impls and "ours" in impls:
                row[f"ratio_ours_over_{name}"] = ratio(impls["ours"], impls[name])
        rows.append(row)
    return rows


def scaling(rows: list[dict], eval_mid: int, sweep_mb: int) -> dict:
    """How throughput and RSS grow: over corpus sizes (eval set at its middle size) and over
    eval-set sizes (decont, corpus at ``sweep_mb``)."""

    def point(row: dict, by: str) -> dict:
        return {by: row[by], **{k: v for k, v in row.items() if k.endswith(FIGURES)}}

    corpus: dict[str, list] = {}
    for row in rows:
        if row["instances"] in (0, eval_mid):
            corpus.setdefault(row["component"], []).append(point(row, "size_mb"))
    evals = [
        point(row, "instances")
        for row in rows
        if row["component"] == "decont" and row["size_mb"] == sweep_mb
    ]
    return {
        "over_corpus_size": corpus,
        "over_eval_size": {"corpus_mb": sweep_mb, "decont": evals},
    }


def checks(manifest: dict, results: list[dict]) -> dict:
    """What was planted against what each implementation removed, per size. ``eval_docs``
    per eval-set size: planted documents whose instance is in that set (what an exact
    decontamination should remove; more means matches between other instances' shared
    template 8-grams and the planted text)."""
    out = {}
    for size, info in manifest["sizes"].items():
        mine = [r for r in results if str(r["size_mb"]) == size]
        removed = {f"{r['component']}/{r['impl']}/{r['instances']}": info["docs"] - r["docs_out"]
                   for r in mine if r["component"] != "read"}  # fmt: skip
        counts = sorted({r["instances"] for r in mine if r["component"] == "decont"})
        planted = [(d, i) for d, i in manifest["eval_plants"] if d < info["docs"]]
        flagged = {r["instances"]: len(r.get("flagged", [])) for r in mine
                   if r["component"] == "decont" and r["impl"] == "ours"}  # fmt: skip
        out[size] = {
            "docs": info["docs"],
            "planted": info["planted"],
            "planted_eval_docs_in_set": {n: sum(i < n for _, i in planted) for n in counts},
            "planted_eval_instances_in_set": {
                n: len({i for _, i in planted if i < n}) for n in counts
            },
            "removed": removed,
            "ours_flagged_instances": flagged,
        }
    return out


def write_result(
    args: argparse.Namespace, manifest: dict, results: list[dict], cores: list[int], total: float
) -> None:
    from curation import middle

    rows = table(results)
    sweep = args.eval_scaling_mb
    result = {
        "benchmark": "curation",
        "command": "python benchmarks/curation.py " + " ".join(sys.argv[1:]),
        "wall_seconds_total": round(total, 1),
        "corpus": {k: v for k, v in manifest.items() if k not in ("sizes", "eval_plants")},
        "sizes": {
            k: {n: v for n, v in info.items() if n != "dir"}
            for k, info in manifest["sizes"].items()
        },
        "eval_sizes": sorted(set(args.instances)),
        "grid": {
            "ours_sizes_mb": sorted(set(args.sizes_mb)),
            "filters_sizes_mb": sorted(set(args.filters_sizes_mb)),
            "datatrove_sizes_mb": sorted(set(args.datatrove_sizes_mb)),
            "datatrove_split_sizes_mb": sorted(set(args.split_sizes_mb)),
            "eval_sweep": {"corpus_mb": sweep, "impls": args.eval_scaling_impls},
            "why": args.why,
        },
        "table": rows,
        "scaling": scaling(rows, middle(args.instances), sweep),
        "checks": checks(manifest, results),
        "measurements": sorted(
            results, key=lambda r: (r["component"], r["size_mb"], r["instances"], r["impl"])
        ),
        "notes": NOTES,
        "machine": {
            "cpu_model": cpu_model(),
            "cpu_count": os.cpu_count(),
            "affinity": sorted(os.sched_getaffinity(0)),
            "cores_used": cores,
            "concurrent_measurements": len(cores),
            "loadavg_end": list(os.getloadavg()),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "packages": package_versions(PACKAGES),
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    for row in rows:
        print(json.dumps(row))
    print(f"-> {Path(args.output)}")


def _cell(row: dict, key: str) -> str:
    value = row.get(key)
    return "-" if value is None else f"{value:g}"


def markdown(result: dict) -> str:
    """The table of a result file as Markdown (for notes): MB/s per core and peak RSS."""
    lines = [
        "| component | MB | instances | ours MB/s | datatrove | datatrove_split | ours/dt"
        " | ours/split | RSS MB ours / dt / split |",
        "|" + "---|" * 9,
    ]
    for row in result["table"]:
        figures = [_cell(row, f"{n}_mb_per_cpu_s") for n in IMPLS]
        figures += [_cell(row, f"ratio_ours_over_{n}") for n in IMPLS[1:]]
        rss = " / ".join(_cell(row, f"{n}_peak_rss_mb") for n in IMPLS)
        cells = [row["component"], str(row["size_mb"]), str(row["instances"] or "-")]
        lines.append("| " + " | ".join([*cells, *figures, rss]) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))))
