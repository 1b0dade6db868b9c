"""evaluate: run lm-eval on one checkpoint over the world's eval sets."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import tempfile

from stages.common.job import Input, JobContext
from stages.evaluate import records, specs, taskpack

PRETRAIN = "pretrain"
CHAT_MODES = ("auto", "always", "never")


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


def use_chat(mode: str, checkpoint: str, task_type: str = "generate") -> bool:
    """Whether a task's prompts are chat formatted.

    ``auto``: generative tasks of every checkpoint but pretrain. Log-likelihood (multiple-choice)
    tasks stay in the plain format for every checkpoint: under a chat template the scored choice
    would have to be the assistant turn's first token, which is not how an assistant answers,
    and the scores would measure the format rather than the knowledge (on the tiny recipe the
    post-trained checkpoints fell to or below chance on every MC task that way).
    """
    if mode not in CHAT_MODES:
        raise ValueError(f"evaluate: config key 'chat_template' must be one of {CHAT_MODES}")
    if mode == "auto":
        return checkpoint != PRETRAIN and task_type == "generate"
    return mode == "always"


def select_tasks(config: dict, index: dict[str, dict]) -> list[str]:
    """Configured tasks (default: every task of eval/index.json), in sorted order."""
    wanted = config.get("tasks") or sorted(index)
    unknown = sorted(set(wanted) - set(index))
    if unknown:
        raise ValueError(
            f"evaluate: config key 'tasks' names {unknown}, not in eval/index.json "
            f"(known: {sorted(index)})"
        )
    return sorted(set(wanted))


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
    lm = HFLM(pretrained=str(hf_dir), device="cpu", batch_size=batch_size, dtype="float32")
    # Finished rows of a batch must be padded, not extended: lm-eval decodes responses with
    # skip_special_tokens=True, so text generated after <|im_end|> would otherwise leak in.
    tok = lm.tokenizer
    ends = {tok.eos_token_id, tok.convert_tokens_to_ids(taskpack.CHAT_END)}
    ends.discard(None)
    ends.discard(tok.unk_token_id)
    lm.model.generation_config.eos_token_id = sorted(ends)
    return lm, tok


def run(
    config: dict, inputs: dict[str, Input], output_dir: pathlib.Path, context: JobContext
) -> dict:
    """Evaluate ``inputs['model']`` on ``inputs['world']``'s eval sets; return flat metrics."""
    # Before the HF libraries are imported: they read these once. Nothing is ever downloaded.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import lm_eval
    from lm_eval.tasks import TaskManager

    model_dir, world = inputs["model"].path, inputs["world"].path
    checkpoint = checkpoint_name(config, model_dir)
    index = taskpack.load_index(world)
    tasks = select_tasks(config, index)
    chat = {t: use_chat(config["chat_template"], checkpoint, index[t]["type"]) for t in tasks}

    tasks_dir = output_dir / "tasks"
    taskpack.write_pack(tasks_dir, index, tasks, chat=chat, max_gen_toks=config["max_gen_toks"])
    lm, tok = load_lm(model_dir, config["batch_size"], config)
    if any(chat.values()) and not tok.chat_template:
        raise ValueError(
            f"evaluate: {model_dir}/model has no chat template; set chat_template: never"
        )

    scratch = pathlib.Path(tempfile.mkdtemp(prefix="reprolm-evaluate-"))
    out: dict = {"results": {}, "n-samples": {}, "samples": {}}
    try:
        taskpack.write_run_pack(scratch / "tasks", tasks_dir, world, index, tasks)
        manager = TaskManager(include_path=str(scratch / "tasks"), include_defaults=False)
        seed = config["seed"]
        # lm-eval applies the chat template per call: one call per formatting.
        for chat_formatted in (False, True):
            group = [t for t in tasks if chat[t] == chat_formatted]
            if not group:
                continue
            part = lm_eval.simple_evaluate(
                model=lm,
                tasks=group,
                num_fewshot=config["num_fewshot"],
                limit=config["limit"],
                bootstrap_iters=0,
                log_samples=True,
                apply_chat_template=chat_formatted,
                fewshot_as_multiturn=chat_formatted,
                task_manager=manager,
                random_seed=seed,
                numpy_random_seed=seed,
                torch_random_seed=seed,
                fewshot_random_seed=seed,
            )
            for key in out:
                out[key].update(part[key])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    results = records.results_json(
        out, index, tasks, checkpoint=checkpoint, chat=chat, config=config
    )
    metrics = records.flat_metrics(results)
    if config["specs"]:
        summaries = specs.run_specs(config, inputs, model_dir / "model", output_dir, lm)
        metrics |= specs.flat_metrics(summaries)
        results["specs"] = summaries
        # Also as tasks (spec id -> metrics), so the release card's table lists them.
        for task_id, summary in summaries.items():
            results["tasks"][task_id] = summary["metrics"]
            results["primary_metrics"][task_id] = summary["primary_metric"]
            results["instances"][task_id] = summary["instances"]
            results["task_types"][task_id] = "spec"
    records.write_json(output_dir / "results.json", results)
    for task in tasks:
        records.write_samples(output_dir / "samples" / f"{task}.jsonl", out["samples"][task])
    return metrics
