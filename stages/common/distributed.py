"""Multi-process training: TrainingArguments from the launcher's DeepSpeed config, rank checks.

``reprolm.launch`` starts the processes (torchrun) and, with DeepSpeed, generates a DeepSpeed
JSON; the runner hands both to the stage in its ``JobContext`` (rank, world size, the DeepSpeed
file, the micro batch of a plain DDP launch). A single process without them trains as before.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from stages.common.job import JobContext


def distributed_args(
    config: Mapping[str, Any], batch_size: int, context: JobContext
) -> dict[str, Any]:
    """TrainingArguments overrides for the job's placement; {} for a plain single process.

    ``batch_size`` is the global batch (samples per optimizer step over all processes).
    """
    import torch

    args: dict[str, Any] = {}
    if config.get("precision") == "bf16":
        args["bf16"] = True
    if torch.cuda.is_available():
        args["use_cpu"] = False
    path, world_size = context.deepspeed_config, context.world_size
    if path is not None:
        if not torch.cuda.is_available():
            # DeepSpeed's CPU accelerator (gloo); set before transformers imports deepspeed.
            os.environ.setdefault("DS_ACCELERATOR", "cpu")
        generated = json.loads(path.read_text("utf-8"))
        args.update(
            deepspeed=str(path),
            per_device_train_batch_size=generated["train_micro_batch_size_per_gpu"],
            gradient_accumulation_steps=generated["gradient_accumulation_steps"],
        )
    elif world_size > 1:
        # Plain DDP (torchrun without DeepSpeed): split the global batch over the processes, in
        # micro batches with gradient accumulation (the launcher has checked that it divides).
        per_process = batch_size // world_size
        micro = context.micro_batch_size or per_process
        if batch_size % world_size or per_process % micro:
            raise ValueError(
                f"a global batch of {batch_size} does not split into {world_size} processes x "
                f"micro batches of {micro}; change the stage's batch size or the job's resources"
            )
        args["per_device_train_batch_size"] = micro
        args["gradient_accumulation_steps"] = per_process // micro
    return args


@contextmanager
def full_parameters(model: Any) -> Iterator[None]:
    """Gather ZeRO-3-partitioned parameters for saving (every rank must enter); else nothing."""
    partitioned = [p for p in model.parameters() if hasattr(p, "ds_id")]
    if not partitioned:
        yield
        return
    import deepspeed

    with deepspeed.zero.GatheredParameters(partitioned, modifier_rank=None):
        yield


def all_reduce_sum(tensor: Any) -> Any:
    """``tensor`` summed over the training processes (itself in a single process)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    summed = tensor.detach().to(device).clone()
    dist.all_reduce(summed)
    return summed.cpu()
