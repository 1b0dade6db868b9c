"""release: the final checkpoint as an HF-format release with model card, evals and lineage."""

from __future__ import annotations

import json
import pathlib
import shutil
import struct

from evals import compare, table
from evals.plot import write_plot
from reprolm.canonical import dump_json
from stages.common.job import Input, JobContext
from stages.release import card, lineage

EVAL_PREFIX = "eval_"
COMPARISON = "comparison"  # payload folder: comparison.json, comparison.csv, comparison.png
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


def _manifest(artifact: pathlib.Path) -> dict | None:
    path = artifact / lineage.MANIFEST
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def copy_model(src: pathlib.Path, dst: pathlib.Path) -> None:
    """Copy the checkpoint's HF files (weights, config, generation config, tokenizer)."""
    for required in ("config.json", "model.safetensors"):
        if not (src / required).is_file():
            raise FileNotFoundError(f"{src / required} is missing: 'model' must be a checkpoint")
    dst.mkdir(parents=True)
    for path in sorted(src.iterdir()):
        if not path.is_file():
            continue
        if path.suffix in PICKLE_SUFFIXES:
            raise ValueError(f"{path}: pickled files are never released; save with safetensors")
        shutil.copyfile(path, dst / path.name)


def parameter_count(safetensors_path: pathlib.Path) -> int:
    """Number of parameters, read from the safetensors header (no tensor is loaded)."""
    with open(safetensors_path, "rb") as handle:
        (size,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(size))
    total = 0
    for name, info in header.items():
        if name != "__metadata__":
            count = 1
            for dim in info["shape"]:
                count *= dim
            total += count
    return total


def model_facts(model_dir: pathlib.Path) -> dict:
    """Architecture facts for the model card."""
    cfg = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    return {
        "architecture": (cfg.get("architectures") or [cfg.get("model_type", "?")])[0],
        "parameters": parameter_count(model_dir / "model.safetensors"),
        "layers": cfg.get("num_hidden_layers"),
        "hidden_size": cfg.get("hidden_size"),
        "vocab_size": cfg.get("vocab_size"),
    }


def released_label(
    model: pathlib.Path,
    evals: dict[str, pathlib.Path],
    results: dict[str, dict],
    order: list[str],
) -> str | None:
    """The eval label of the released checkpoint.

    Matched by fingerprint (the evaluation's ``model`` input is this checkpoint), else by stage
    name; without manifests (hand-built inputs) the last checkpoint in pipeline order.
    """
    manifest = _manifest(model)
    order = table.pipeline_order(
        {label: doc["checkpoint"] for label, doc in results.items()}, order
    )
    if manifest is None:
        return order[-1]
    for label, path in sorted(evals.items()):
        upstream = (_manifest(path) or {}).get("inputs", {}).get("model", {})
        if upstream.get("fingerprint") == manifest["fingerprint"]:
            return label
    for label in order:
        if results[label]["checkpoint"] == manifest["stage"]:
            return label
    return None  # the released checkpoint was not evaluated: the card says so


def write_comparison(config: dict, evals: dict[str, pathlib.Path], out: pathlib.Path) -> dict:
    """The one tasks × checkpoints table (:func:`evals.table.build`, in the pipeline order of
    the config's ``checkpoints``) as JSON (with the entries), CSV and a PNG plot."""
    comparison = {**table.build(evals, config["checkpoints"]), "release": config["name"]}
    out.mkdir(parents=True)
    (out / f"{COMPARISON}.json").write_text(dump_json(comparison), encoding="utf-8")
    (out / f"{COMPARISON}.csv").write_text(compare.csv_text(comparison), encoding="utf-8")
    write_plot(comparison, out / f"{COMPARISON}.png")
    return comparison


def run(
    config: dict, inputs: dict[str, Input], output_dir: pathlib.Path, context: JobContext
) -> dict:
    """Write model/, eval_table.md, comparison/, README.md and lineage/; return metrics."""
    if "model" not in inputs:
        raise ValueError("release: input 'model' (the final checkpoint artifact) is required")
    model = inputs["model"].path
    evals = {
        name[len(EVAL_PREFIX) :]: pathlib.Path(path)
        for name, path in inputs.items()
        if name.startswith(EVAL_PREFIX)
    }
    unknown = sorted(set(inputs) - {"model"} - {EVAL_PREFIX + label for label in evals})
    if unknown or not evals:
        raise ValueError(
            f"release: inputs are 'model' and one 'eval_<checkpoint>' per evaluation "
            f"(e.g. eval_sft); got {sorted(inputs)}"
        )
    results = {label: card.read_results(path) for label, path in evals.items()}

    copy_model(model / "model", output_dir / "model")
    comparison = write_comparison(config, evals, output_dir / COMPARISON)
    eval_table = table.checkpoint_markdown(comparison)  # the same table, a row per checkpoint
    (output_dir / "eval_table.md").write_text(eval_table, encoding="utf-8")

    manifests = lineage.collect(inputs)
    lineage.write(output_dir / "lineage", manifests)
    rows = lineage.summary(manifests, config["stages"])

    label = released_label(model, evals, results, config["checkpoints"])
    released = results[label] if label else {"tasks": {}}
    own = _manifest(model)
    parent = (own or {}).get("inputs", {}).get("model")
    base_model = f"{parent['stage']}-{parent['fingerprint']}" if parent else None
    datasets = [
        f"{r['stage']}-{r['fingerprint']}" for r in rows if r["stage"] in ("world", "curate")
    ]
    stages_seen = {r["stage"] for r in rows} | {res["checkpoint"] for res in results.values()}
    front = card.front_matter(
        config,
        released,
        base_model,
        datasets,
        [stage for stage in config["checkpoints"] if stage in stages_seen],
    )
    readme = card.readme(
        config,
        model_facts=model_facts(output_dir / "model"),
        released_label=label or (own or {}).get("stage", "final"),
        evaluated=label is not None,
        comparison=compare.markdown(comparison),
        comparison_files=sorted(
            f"{COMPARISON}/{p.name}" for p in (output_dir / COMPARISON).iterdir()
        ),
        lineage_rows=rows,
        front=front,
    )
    (output_dir / "README.md").write_text(readme, encoding="utf-8")

    metrics: dict[str, float] = {"lineage_manifests": len(manifests)}
    for task, values in sorted(released["tasks"].items()):
        for metric, value in sorted(values.items()):
            metrics[f"{task}/{metric}"] = value
    for entry in compare.entries_of(comparison):  # spec results: their primary metric
        if entry.column == label and entry.spec_hash is not None:
            metrics[f"{entry.task}/{entry.metric}"] = entry.value
    return metrics
