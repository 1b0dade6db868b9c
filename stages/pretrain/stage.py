"""Pretrain a small OLMo-2 model from its config on the tokenize stage's token shards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evals.steps import saved_steps
from stages.common import checkpoints
from stages.common.job import Input, JobContext
from stages.common.training import (
    TrainingInputError,
    common_args,
    count_parameters,
    load_tokenizer,
    save_model,
    scratch_dir,
    series,
    window_mean,
    write_training,
)
from stages.pretrain.data import make_dataset, open_order, open_shards, read_index
from stages.pretrain.datafp import data_fingerprint
from stages.pretrain.objective import (
    OLMOE_ROUTER_AUX_LOSS_COEF,
    RouterWindow,
    objective,
    pretrain_trainer_class,
)
from stages.pretrain.routerstats import split_history, write_router_stats
from stages.pretrain.steps import install_steps, step_saver


def build_model(
    model_config: dict[str, Any],
    tokenizer: Any,
    architecture: str = "olmo2",
    router_aux_loss_coef: float = OLMOE_ROUTER_AUX_LOSS_COEF,
) -> Any:
    """A freshly initialized ``Olmo2ForCausalLM`` or ``OlmoeForCausalLM`` (no download) sized by
    the config block; an OLMoE adds ``router_aux_loss_coef`` x its load-balancing loss."""
    from transformers import Olmo2Config, Olmo2ForCausalLM, OlmoeConfig, OlmoeForCausalLM

    if model_config["hidden_size"] % model_config["num_heads"]:
        raise TrainingInputError(
            f"pretrain.model.hidden_size={model_config['hidden_size']} is not divisible by "
            f"pretrain.model.num_heads={model_config['num_heads']}"
        )
    if model_config["num_heads"] % model_config["num_kv_heads"]:
        raise TrainingInputError(
            f"pretrain.model.num_heads={model_config['num_heads']} is not divisible by "
            f"pretrain.model.num_kv_heads={model_config['num_kv_heads']}"
        )
    moe_keys = {"num_experts", "num_experts_per_tok"}
    if architecture == "olmoe":
        missing = sorted(moe_keys - set(model_config))
        if missing:
            raise TrainingInputError(
                f"pretrain.architecture=olmoe needs pretrain.model.{missing[0]} (e.g. 64 experts, "
                "8 per token as in OLMoE-1B-7B)"
            )
        if model_config["num_experts_per_tok"] > model_config["num_experts"]:
            raise TrainingInputError(
                f"pretrain.model.num_experts_per_tok={model_config['num_experts_per_tok']} exceeds "
                f"pretrain.model.num_experts={model_config['num_experts']}"
            )
    elif moe_keys & set(model_config):
        raise TrainingInputError(
            "pretrain.model.num_experts/num_experts_per_tok are for MoE models: set "
            "pretrain.architecture: olmoe, or remove them"
        )
    shared = dict(
        vocab_size=len(tokenizer),
        hidden_size=model_config["hidden_size"],
        intermediate_size=model_config["intermediate_size"],
        num_hidden_layers=model_config["num_layers"],
        num_attention_heads=model_config["num_heads"],
        num_key_value_heads=model_config["num_kv_heads"],
        max_position_embeddings=model_config["max_position_embeddings"],
        rope_parameters={"rope_type": "default", "rope_theta": float(model_config["rope_theta"])},
        tie_word_embeddings=model_config["tie_word_embeddings"],
        initializer_range=model_config["init_std"],
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    if architecture == "olmoe":
        config = OlmoeConfig(
            **shared,
            num_experts=model_config["num_experts"],
            num_experts_per_tok=model_config["num_experts_per_tok"],
            # Add the load-balancing loss to the training loss, as OLMoE trains.
            output_router_logits=True,
            router_aux_loss_coef=router_aux_loss_coef,
        )
        return OlmoeForCausalLM(config)
    return Olmo2ForCausalLM(Olmo2Config(**shared))


def run(config: dict, inputs: dict[str, Input], output_dir: Path, context: JobContext) -> dict:
    """Train for ``config['steps']`` steps; write model/ and training/; return headline metrics."""
    from transformers import TrainingArguments, default_data_collator

    tokenize_dir = inputs["tokenize"].path
    tokenizer = load_tokenizer(tokenize_dir / "tokenizer")
    seq_len = config["seq_len"]
    if seq_len > config["model"]["max_position_embeddings"]:
        raise TrainingInputError(
            f"pretrain.seq_len={seq_len} exceeds pretrain.model.max_position_embeddings="
            f"{config['model']['max_position_embeddings']}"
        )
    shards = open_shards(tokenize_dir, len(tokenizer))
    # Sample i of the run is window order[i]; batch_size is the global batch (all processes).
    order = open_order(tokenize_dir, shards, seq_len, config["steps"] * config["batch_size"])
    dataset, windows = make_dataset(shards, seq_len, order)
    data = data_fingerprint(inputs["tokenize"], read_index(tokenize_dir))
    architecture = config.get("architecture", "olmo2")
    if architecture != "olmoe":
        given = [k for k in ("router_aux_loss_coef", "router_z_loss_coef") if k in config]
        if given:
            raise TrainingInputError(
                f"pretrain.{given[0]} is for MoE models: set pretrain.architecture: olmoe, or "
                "remove it"
            )
    aux = config.get("router_aux_loss_coef", OLMOE_ROUTER_AUX_LOSS_COEF)
    model = build_model(config["model"], tokenizer, architecture, aux)

    with scratch_dir(output_dir, context) as scratch:
        args = TrainingArguments(
            **common_args(config, scratch, context),
            adam_beta1=config["adam_beta1"],
            adam_beta2=config["adam_beta2"],
            adam_epsilon=config["adam_epsilon"],
        )
        trainer = pretrain_trainer_class()(
            model=model, args=args, train_dataset=dataset, data_collator=default_data_collator
        )
        steps = saved_steps(config)  # intermediate checkpoints for evaluate (none by default)
        if steps:
            trainer.add_callback(step_saver(model, tokenizer, scratch, steps, context))
        trainer.objective = objective(config)
        if architecture == "olmoe":
            trainer.router_window = RouterWindow()
        checkpoints.train(trainer, context, data)
        history, router_rows = split_history(trainer.state.log_history)
        install_steps(scratch, output_dir, steps, context)

    save_model(model, tokenizer, output_dir, context)
    losses = series(history, "loss")
    tokens_seen = config["steps"] * config["batch_size"] * seq_len
    summary = {
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "first_quarter_loss": window_mean(losses, first=True),
        "last_quarter_loss": window_mean(losses, first=False),
        "tokens_seen": tokens_seen,
        "epochs": tokens_seen / (windows * seq_len),
        "parameters": count_parameters(model),
        "steps": config["steps"],
    }
    write_router_stats(output_dir, router_rows)
    return write_training(output_dir, history, summary)
