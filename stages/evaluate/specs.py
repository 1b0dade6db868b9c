"""Evaluation specs (``evaluate.specs``) on a checkpoint, with each score's contamination figure.

Each spec runs through its family (``families.family_of(spec).evaluate``) on the dataset the
``evaldata`` input imported; the result directory ``specs/<safe id>/`` is recomputable with
``reprolm eval recompute``. Beside the score, ``result.json`` records the decontamination figure
of the training data against that dataset, from the ``curate`` input's report, with the curate
artifact's digest.
"""

from __future__ import annotations

import json
import pathlib

from reprolm.canonical import dump_json

SPECS_DIR = "specs"


def safe_id(task_id: str) -> str:
    """A spec id as a path / metric name part: ``arc_easy:rc::olmes`` -> ``arc_easy_rc__olmes``."""
    return task_id.replace("::", "__").replace(":", "_")


def contamination(curate: pathlib.Path, dataset: str, evaluated: list[int | None]) -> dict:
    """The decontamination figure of ``dataset`` for the evaluated row indices."""
    report_path = curate / "decontamination.json"
    manifest = curate / "provenance.json"
    if not report_path.is_file():
        raise FileNotFoundError(f"{report_path}: missing; input 'curate' must be a curate artifact")
    spec_sets = json.loads(report_path.read_text(encoding="utf-8")).get("spec_sets", {})
    if dataset not in spec_sets:
        raise ValueError(
            f"{report_path}: no 'spec_sets.{dataset}'; the curate job did not decontaminate "
            "against this dataset (its 'evaldata' input must be the one evaluate reads)"
        )
    entry = spec_sets[dataset]
    digest = (
        json.loads(manifest.read_text(encoding="utf-8"))["digest"] if manifest.is_file() else None
    )
    if not entry.get("measured"):
        return {"dataset": dataset, "measured": False, "curate_digest": digest}
    if None in evaluated:
        raise ValueError(f"{dataset}: measured for contamination but its requests lack 'index'")
    flagged = {int(i) for i in entry["flagged_ids"]}
    hits = sorted(i for i in evaluated if i in flagged)
    return {
        "dataset": dataset,
        "measured": True,
        "instances": len(evaluated),
        "flagged": len(hits),
        "flagged_indices": hits,
        "contamination": len(hits) / len(evaluated) if evaluated else 0.0,
        "dataset_contamination": entry["contamination"],
        "curate_digest": digest,
    }


def run_specs(config: dict, inputs: dict, model_dir: pathlib.Path, output_dir: pathlib.Path, lm):
    """Run every configured spec; return ``{spec id: summary}`` for results.json."""
    from evals import critics
    from evals.families import RunOptions, family_of
    from evals.registry import get_spec
    from evals.sources import read_jsonl
    from stages.evaldata.stage import data_file

    missing = [name for name in ("evaldata", "curate") if name not in inputs]
    if missing:
        raise ValueError(
            f"evaluate: config key 'specs' lists {config['specs']} but input(s) {missing} are "
            "missing; pass --input evaldata=<evaldata artifact> --input curate=<curate "
            "artifact>, or set specs: []"
        )
    summaries = {}
    for task_id in config["specs"]:
        try:
            spec = get_spec(task_id)
        except KeyError as error:
            raise ValueError(f"evaluate: config key 'specs': {error.args[0]}") from None
        dataset = config["spec_data"].get(task_id, spec.task)
        data = data_file(pathlib.Path(inputs["evaldata"]), dataset)
        if not data.exists():  # a JSONL file or a directory dataset
            raise FileNotFoundError(f"{data}: the evaldata input has no dataset {dataset!r}")
        out = output_dir / SPECS_DIR / safe_id(task_id)
        options = RunOptions(
            limit=config["spec_limit"],
            batch_size=config["batch_size"],
            seed=config["seed"],
            max_gen_toks=config["max_gen_toks"],
            lm=lm,
            critics=critics.from_config(config),
        )
        result = family_of(spec).evaluate(spec, model_dir, data, out, options)
        # Only families with a ``texts`` hook (measured datasets) key requests by row index.
        evaluated = [r.get("index") for r in read_jsonl(out / "requests.jsonl")]
        result["decontamination"] = contamination(
            pathlib.Path(inputs["curate"]), dataset, evaluated
        )
        (out / "result.json").write_text(dump_json(result), encoding="utf-8")
        summaries[task_id] = {
            "dir": f"{SPECS_DIR}/{safe_id(task_id)}",
            "kind": result["kind"],
            "spec_hash": result["spec_hash"],
            "metrics": result["metrics"],
            "primary_metric": result["primary_metric"],
            "primary": result["primary"],
            "instances": result["instances"],
            "decontamination": result["decontamination"],
        }
    return summaries


def flat_metrics(summaries: dict) -> dict[str, float]:
    """``specs/<safe id>/<metric>``, ``.../primary`` (the spec's primary metric, for the run
    summary) and ``.../contamination`` for the runner's summary."""
    out = {}
    for task_id, summary in sorted(summaries.items()):
        prefix = f"{SPECS_DIR}/{safe_id(task_id)}"
        out |= {f"{prefix}/{m}": v for m, v in sorted(summary["metrics"].items())}
        out[f"{prefix}/primary"] = summary["primary"]
        if summary["decontamination"].get("measured"):
            out[f"{prefix}/contamination"] = summary["decontamination"]["contamination"]
    return out
