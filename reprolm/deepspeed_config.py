"""DeepSpeed configs generated from a recipe: placement from ``resources``, numerics from the stage.

What goes where (and so what reaches a fingerprint):

* ``resources.<stage>.deepspeed`` (ZeRO stage, optimizer/parameter offload) and
  ``resources.<stage>.micro_batch_size`` only say how the work is spread over processes. They are
  placement, like the node count: never fingerprinted. They change float rounding (reduction
  order, gradient accumulation), which is why multi-process jobs declare a tolerance.
* The stage config's ``batch_size`` (windows per optimizer step, over all processes),
  ``max_grad_norm`` and ``precision`` (fp32 | bf16) change what is computed: they are in the
  stage config and its fingerprint, and the DeepSpeed JSON is derived from them.

Batch fields are written as concrete numbers (the same ones HF Trainer derives from its
``TrainingArguments``, which it checks against the JSON); only the hidden-size-based ZeRO buckets
and the optimizer's hyperparameters stay ``"auto"``, for the Trainer to fill from the model and
the stage's ``TrainingArguments``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ZERO_STAGES = (0, 1, 2, 3)


class DeepSpeedConfigError(ValueError):
    """The recipe's distributed settings cannot be turned into a DeepSpeed config."""


def global_batch(stage: str, config: Mapping[str, Any]) -> int:
    """Samples per optimizer step over all processes (GRPO: prompts x generations)."""
    if stage == "rlvr":
        return int(config["prompts_per_step"]) * int(config["num_generations"])
    return int(config["batch_size"])


def batch_split(
    stage: str, config: Mapping[str, Any], world_size: int, micro_batch_size: int | None
) -> tuple[int, int]:
    """(per-process micro batch, gradient accumulation steps) that make up the global batch."""
    batch = global_batch(stage, config)
    key = "rlvr.prompts_per_step x num_generations" if stage == "rlvr" else f"{stage}.batch_size"
    if batch % world_size:
        raise DeepSpeedConfigError(
            f"{key}={batch} is not divisible by the {world_size} training processes "
            f"(resources.{stage}: nodes x gpus, or nodes x tasks); change one of them"
        )
    per_process = batch // world_size
    micro = micro_batch_size or per_process
    if per_process % micro:
        raise DeepSpeedConfigError(
            f"resources.{stage}.micro_batch_size={micro} does not divide the {per_process} "
            f"samples each of the {world_size} processes gets per step ({key}={batch})"
        )
    return micro, per_process // micro


def _check_placement(stage: str, zero: Any, offload_optimizer: bool, offload_params: bool) -> None:
    """Reject a ZeRO stage / offload combination DeepSpeed cannot run."""
    if zero not in ZERO_STAGES:
        raise DeepSpeedConfigError(
            f"resources.{stage}.deepspeed.zero_stage={zero!r}: expected one of {ZERO_STAGES}"
        )
    if offload_params and zero != 3:
        raise DeepSpeedConfigError(
            f"resources.{stage}.deepspeed.offload_params needs zero_stage 3 (got {zero}): "
            "only ZeRO-3 partitions parameters"
        )
    if offload_optimizer and zero == 0:
        raise DeepSpeedConfigError(
            f"resources.{stage}.deepspeed.offload_optimizer needs zero_stage >= 1 (got 0)"
        )


def _zero_block(
    zero: int, placement: Mapping[str, Any], offload_optimizer: bool, offload_params: bool
) -> dict[str, Any]:
    """The ``zero_optimization`` section."""
    zero_block: dict[str, Any] = {
        "stage": zero,
        "contiguous_gradients": True,
        "overlap_comm": zero > 0,
        # DeepSpeed's default buckets (5e8 elements) are allocated and zeroed every step: on a
        # small model that dominates the step. "auto" = hidden_size^2, filled by HF Trainer.
        "reduce_bucket_size": "auto",
    }
    if zero in (1, 2):
        zero_block["allgather_bucket_size"] = int(placement.get("allgather_bucket_size", 2e8))
    if zero == 3:
        zero_block.update(
            stage3_prefetch_bucket_size="auto",
            stage3_param_persistence_threshold="auto",
            # Gather the full weights when the stage saves its checkpoint.
            stage3_gather_16bit_weights_on_model_save=True,
        )
    if offload_optimizer:
        zero_block["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
    if offload_params:
        zero_block["offload_param"] = {"device": "cpu", "pin_memory": True}
    return zero_block


def deepspeed_config(
    stage: str,
    config: Mapping[str, Any],
    placement: Mapping[str, Any],
    world_size: int,
    micro_batch_size: int | None = None,
) -> dict[str, Any]:
    """The DeepSpeed JSON of one job; ``placement`` is ``resources.<stage>.deepspeed``."""
    zero = placement.get("zero_stage", 2)
    offload_optimizer = bool(placement.get("offload_optimizer", False))
    offload_params = bool(placement.get("offload_params", False))
    _check_placement(stage, zero, offload_optimizer, offload_params)
    micro, accumulation = batch_split(stage, config, world_size, micro_batch_size)
    bf16 = config.get("precision", "fp32") == "bf16"
    zero_block = _zero_block(zero, placement, offload_optimizer, offload_params)
    result: dict[str, Any] = {
        "train_batch_size": micro * accumulation * world_size,
        "train_micro_batch_size_per_gpu": micro,
        "gradient_accumulation_steps": accumulation,
        "gradient_clipping": float(config["max_grad_norm"]),
        "bf16": {"enabled": bf16},
        "fp16": {"enabled": False},
        "zero_optimization": zero_block,
        "steps_per_print": 10**9,  # the Trainer logs; DeepSpeed's own step log is noise
        "wall_clock_breakdown": False,
    }
    if offload_optimizer:
        # An offloaded optimizer runs on the CPU: DeepSpeed's CPU AdamW, hyperparameters filled
        # by HF Trainer from the stage's TrainingArguments.
        result["optimizer"] = {
            "type": "AdamW",
            "params": {"lr": "auto", "betas": "auto", "eps": "auto", "weight_decay": "auto"},
        }
    return result
