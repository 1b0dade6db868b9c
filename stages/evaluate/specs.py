"""The evaluate job's evaluations: the world's tasks (``evaluate.tasks``) and the registered
specs (``evaluate.specs``), as :class:`evals.jobs.EvalJob` s, and each spec score's
contamination figure.

Every result directory is ``specs/<safe id>/`` (recomputable with ``reprolm eval recompute``).
World tasks read the world artifact's ``eval/<task>.jsonl``, with ``limit``, ``num_fewshot`` and
the ``chat_template`` mode; specs read the dataset the ``evaldata`` input imported, with
``spec_limit``, and ``result.json`` records, beside the score, the decontamination figure of the
training data against that dataset, from the ``curate`` input's report, with the curate
artifact's digest.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

from evals import critics
from evals.families import RunOptions
from evals.jobs import EvalJob
from evals.registry import get_spec
from evals.world import load_index, spec_for, task_type

SPECS_DIR = "specs"
CHAT_MODES = ("auto", "always", "never")


def safe_id(task_id: str) -> str:
    """A spec id as a path / metric name part: ``arc_easy:rc::olmes`` -> ``arc_easy_rc__olmes``."""
    return task_id.replace("::", "__").replace(":", "_")


def use_chat(mode: str, checkpoint: str, task_type: str = "generate") -> bool:
    """Whether a world task's prompts are chat formatted.

    ``auto``: generative tasks of every checkpoint but the base models (pretrain, base_model,
    midtrain, soup:
    :data:`evals.basevariants.BASE_KINDS`). Log-likelihood (multiple-choice)
    tasks stay in the plain format for every checkpoint: under a chat template the scored choice
    would have to be the assistant turn's first token, which is not how an assistant answers,
    and the scores would measure the format rather than the knowledge (on the tiny recipe the
    post-trained checkpoints fell to or below chance on every MC task that way).
    """
    if mode not in CHAT_MODES:
        raise ValueError(f"evaluate: config key 'chat_template' must be one of {CHAT_MODES}")
    if mode == "auto":  # a pretraining step (pretrain@step100) is a pretrain checkpoint
        from evals.basevariants import BASE_KINDS

        return checkpoint.partition("@")[0] not in BASE_KINDS and task_type == "generate"
    return mode == "always"


def select_tasks(config: dict, index: dict[str, dict]) -> list[str]:
    """Configured world tasks (names, or their spec ids; default: every task of
    eval/index.json), in sorted order."""
    from evals.world import TASK_IDS

    by_id = {task_id: name for name, task_id in TASK_IDS.items()}
    wanted = [by_id.get(t, t) for t in config.get("tasks") or sorted(index)]
    unknown = sorted(set(wanted) - set(index))
    if unknown:
        raise ValueError(
            f"evaluate: config key 'tasks' names {unknown}, not in eval/index.json "
            f"(known: {sorted(index)})"
        )
    return sorted(set(wanted))


def world_jobs(
    config: dict, world: pathlib.Path, checkpoint: str, output_dir: pathlib.Path, lm: Any
) -> list[EvalJob]:
    """The configured world tasks, plain-formatted ones first (each group: one lm-eval call)."""
    index = load_index(world)
    jobs = []
    for name in select_tasks(config, index):
        spec = spec_for(name, index[name])
        chat = use_chat(config["chat_template"], checkpoint, task_type(spec))
        options = RunOptions(
            limit=config["limit"],
            batch_size=config["batch_size"],
            seed=config["seed"],
            backend=config.get("backend") or "hf",
            max_gen_toks=config["max_gen_toks"],
            lm=lm,
            num_fewshot=config["num_fewshot"],
            chat=chat,
        )
        out = output_dir / SPECS_DIR / safe_id(spec.task_id)
        jobs.append(EvalJob(name, spec, world / index[name]["file"], out, options))
    return sorted(jobs, key=lambda job: (bool(job.options.chat), job.name))


def spec_jobs(
    config: dict,
    inputs: dict,
    output_dir: pathlib.Path,
    lm: Any,
    *,
    checkpoint: str = "",
    chat_template: bool = True,
) -> list[EvalJob]:
    """The configured ``evaluate.specs`` on the ``evaldata`` input's datasets. A base model (no
    chat template, or a base ``checkpoint`` kind) runs a chat spec's base variant instead
    (:func:`evals.basevariants.choose`; the job's ``variant`` records it)."""
    from evals.basevariants import choose
    from stages.evaldata.stage import data_file

    if not config["specs"]:
        return []
    missing = [name for name in ("evaldata", "curate") if name not in inputs]
    if missing:
        raise ValueError(
            f"evaluate: config key 'specs' lists {config['specs']} but input(s) {missing} are "
            "missing; pass --input evaldata=<evaldata artifact> --input curate=<curate "
            "artifact>, or set specs: []"
        )
    jobs = []
    for task_id in config["specs"]:
        try:
            spec = get_spec(task_id)
        except KeyError as error:
            raise ValueError(f"evaluate: config key 'specs': {error.args[0]}") from None
        data = data_file(pathlib.Path(inputs["evaldata"]), dataset_of(config, task_id))
        if not data.exists():  # a JSONL file or a directory dataset
            raise FileNotFoundError(
                f"{data}: the evaldata input has no dataset {dataset_of(config, task_id)!r}"
            )
        options = RunOptions(
            limit=config["spec_limit"],
            batch_size=config["batch_size"],
            seed=config["seed"],
            max_gen_toks=config["max_gen_toks"],
            lm=lm,
            critics=critics.from_config(config),
        )
        variant = choose(task_id, checkpoint, chat_template)
        if variant is not None:
            spec = get_spec(variant["ran"])
        out = output_dir / SPECS_DIR / safe_id(spec.task_id)
        jobs.append(EvalJob(spec.task_id, spec, data, out, options, variant))
    return jobs


def dataset_of(config: dict, task_id: str) -> str:
    """The evaldata dataset a spec reads (``evaluate.spec_data``, default its task name)."""
    return config["spec_data"].get(task_id, get_spec(task_id).task)


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


def add_variant(job: EvalJob) -> dict[str, str] | None:
    """Record in a spec result's result.json which spec ran for the one requested, and why
    (``variant``; absent when the requested spec ran); return it."""
    from evals import results

    if job.variant is not None:
        results.update_result(job.out_dir, variant=job.variant)
    return job.variant


def add_contamination(job: EvalJob, config: dict, curate: pathlib.Path) -> dict:
    """Record a spec result's decontamination figure in its result.json; return the figure."""
    from evals import results
    from evals.sources import read_jsonl

    # Only families with a ``texts`` hook (measured datasets) key requests by row index.
    # A row asked in two passes (SimpleToM's reminder) counts once.
    rows = read_jsonl(job.out_dir / "requests.jsonl")
    evaluated = list(dict.fromkeys(r.get("index") for r in rows))
    figure = contamination(curate, dataset_of(config, job.requested), evaluated)
    results.update_result(job.out_dir, decontamination=figure)
    return figure
