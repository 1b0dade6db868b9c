"""vLLM generation (GPU only): a clear error where it is missing, the lm-eval and TRL options.

vLLM has no CPU wheel; recipes for GPU clusters turn it on (``rlvr.use_vllm``,
``evaluate.backend: vllm``) and this machine only checks that the options validate and reach
TRL / lm-eval.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any


class VllmMissingError(RuntimeError):
    """A recipe asks for vLLM where the ``vllm`` package is not installed."""


def require_vllm(key: str) -> None:
    """Raise a clear error naming the recipe key when vllm cannot be imported."""
    if importlib.util.find_spec("vllm") is None:
        raise VllmMissingError(
            f"{key} asks for vLLM, which is not installed (GPU only): install the `gpu` extra "
            "(pip install -c requirements.lock '.[gpu]') on a CUDA machine, or unset the key to "
            "generate with transformers"
        )


def grpo_vllm_args(config: dict[str, Any]) -> dict[str, Any]:
    """GRPOConfig fields for ``rlvr.use_vllm`` (TRL generates with vLLM); {} when unset."""
    if not config.get("use_vllm"):
        return {}
    require_vllm("rlvr.use_vllm")
    args: dict[str, Any] = {"use_vllm": True, "vllm_mode": config.get("vllm_mode", "colocate")}
    if args["vllm_mode"] == "server":
        # The client side of `trl vllm-serve`: this machine only (start it with --host 127.0.0.1).
        args["vllm_server_host"] = "127.0.0.1"
    if "vllm_gpu_memory_utilization" in config:
        args["vllm_gpu_memory_utilization"] = config["vllm_gpu_memory_utilization"]
    return args


def lm_eval_vllm(model_dir: Path, config: dict[str, Any]) -> Any:
    """lm-eval's vLLM model on ``model_dir`` (``evaluate.backend: vllm``)."""
    require_vllm("evaluate.backend=vllm")
    from lm_eval.models.vllm_causallms import VLLM

    return VLLM(
        pretrained=str(model_dir),
        tensor_parallel_size=config.get("tensor_parallel_size", 1),
        batch_size="auto",
        dtype="auto",
        seed=config["seed"],
        load_format="safetensors",  # never a pickled checkpoint
    )
