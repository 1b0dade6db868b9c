"""evaluate: one checkpoint on the world's eval sets and the registered specs, one loop.

Every evaluation, a world task (``evaluate.tasks``) or a spec (``evaluate.specs``), is a task
spec run through its family (:func:`evals.jobs.run_jobs`) and written as one result envelope to
``specs/<safe id>/``; ``results.json`` indexes them (:mod:`stages.evaluate.document`).
"""

from __future__ import annotations

import json
import os
import pathlib

from evals import steps
from evals import world as world_tasks
from evals.jobs import run_jobs
from stages.common.job import Input, JobContext
from stages.common.progress import Progress, tqdm_factory
from stages.evaluate import document
from stages.evaluate.specs import add_contamination, add_variant, spec_jobs, world_jobs


def checkpoint_name(config: dict, model_dir: pathlib.Path) -> str:
    """The checkpoint's stage: config key ``checkpoint``, else the input's provenance.json."""
    if config.get("checkpoint"):
        return str(config["checkpoint"])
    manifest = model_dir / "provenance.json"
    if manifest.is_file():
        stage = json.loads(manifest.read_text(encoding="utf-8")).get("stage")
        if stage:
            return str(stage)
    raise ValueError(
        f"evaluate: config key 'checkpoint' is not set and {manifest} names no 'stage'; "
        "set checkpoint to the stage that produced input 'model' (e.g. pretrain, sft)"
    )


def load_lm(model_dir: pathlib.Path, batch_size: int, config: dict | None = None):
    """An lm-eval HF model on CPU in float32 that stops a batch row at any end token (or, with
    ``backend: vllm``, lm-eval's vLLM model on GPUs)."""
    from lm_eval.models.huggingface import HFLM

    hf_dir = model_dir / "model"
    if not (hf_dir / "config.json").is_file():
        raise FileNotFoundError(f"{hf_dir}/config.json is missing: 'model' must be a checkpoint")
    if config and config.get("backend") == "vllm":
        from stages.common.vllm import lm_eval_vllm

        lm = lm_eval_vllm(hf_dir, config)
        return lm, lm.tokenizer
    lm = HFLM(
        pretrained=str(hf_dir), device="cpu", batch_size=batch_size, dtype="float32",
        use_safetensors=True,
    )  # fmt: skip
    # lm-eval's request bars become this stage's progress (a bar on a terminal, lines in logs).
    import lm_eval.models.huggingface as hf_models

    hf_models.tqdm = tqdm_factory("evaluate", "request")
    # Finished rows of a batch must be padded, not extended: lm-eval decodes responses with
    # skip_special_tokens=True, so text generated after <|im_end|> would otherwise leak in.
    tok = lm.tokenizer
    ends = {tok.eos_token_id, tok.convert_tokens_to_ids(world_tasks.CHAT_END)}
    ends.discard(None)
    ends.discard(tok.unk_token_id)
    lm.model.generation_config.eos_token_id = sorted(ends)
    return lm, tok


def run(
    config: dict, inputs: dict[str, Input], output_dir: pathlib.Path, context: JobContext
) -> dict:
    """Evaluate ``inputs['model']`` on the world's tasks and the specs; return flat metrics."""
    # Before the HF libraries are imported: they read these once. Nothing is ever downloaded.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    artifact, world = inputs["model"].path, inputs["world"].path
    checkpoint = checkpoint_name(config, artifact)
    # A pretraining step (pretrain@step100) reads that step's weights from the artifact.
    model_dir = steps.weights_root(artifact, checkpoint)
    if not (model_dir / "model" / "config.json").is_file() and model_dir != artifact:
        raise FileNotFoundError(
            f"evaluate: checkpoint {checkpoint}: {model_dir}/model is missing: the pretrain "
            "artifact did not save that step (pretrain.save_steps / save_every)"
        )
    world_tasks.load_index(world)  # a bad world artifact fails before the model is loaded
    lm, tok = load_lm(model_dir, config["batch_size"], config)
    jobs = world_jobs(config, world, checkpoint, output_dir, lm)
    if any(job.options.chat for job in jobs) and not tok.chat_template:
        raise ValueError(
            f"evaluate: {model_dir}/model has no chat template; set chat_template: never"
        )
    jobs += spec_jobs(
        config, inputs, output_dir, lm, checkpoint=checkpoint,
        chat_template=bool(getattr(tok, "chat_template", None)),
    )  # fmt: skip
    summaries = {}
    with Progress("evaluate", len(jobs), "task") as progress:
        done = run_jobs(
            jobs,
            model_dir / "model",
            lambda batch: progress.update(len(batch), last=batch[-1].name),
        )
    for job, result in done:
        if job.requested in config["specs"]:
            if job.variant is not None:
                result["variant"] = add_variant(job)
            result["decontamination"] = add_contamination(
                job, config, pathlib.Path(inputs["curate"])
            )
        summaries[job.spec.task_id] = document.summary(job, result, output_dir)
    results = document.results_json(summaries, checkpoint=checkpoint, config=config)
    document.write_json(output_dir / "results.json", results)
    return document.flat_metrics(summaries)
