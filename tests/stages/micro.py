"""The micro recipe for stage tests: complete configs (schema defaults + overrides) and a
helper that runs a stage the way the runner would (seeded, threads pinned).

Other stages' tests reuse it: ``from tests.stages.micro import MICRO_CONFIGS, run_stage``.
"""

from __future__ import annotations

import copy
import pathlib
import random

import yaml

from stages.common.job import JobContext, as_inputs

SCHEMA_DIR = pathlib.Path(__file__).resolve().parents[2] / "config" / "schema"

# Only what differs from the tiny defaults in config/schema/<stage>.schema.yaml.
MICRO_OVERRIDES: dict[str, dict] = {
    "world": {
        "people": 12,
        "fact_docs": 40,
        "arithmetic_docs": 150,
        "stories": 40,
        "sentence_docs": 40,
        "midtrain": 40,
        "sft": 80,
        "preference": 40,
        "rlvr": 40,
        "operand_max": 10,
        "eval_size": {"arith_gen": 20, "arith_mc": 20, "facts_mc": 20, "tom_mc": 20},
        "planted": 4,
    },
    "curate": {},
    # seq_len: the plan copies pretrain.seq_len (64 in the micro recipe) into tokenize.
    "tokenize": {"vocab_size": 512, "shard_tokens": 4000, "mask_checks": 8, "seq_len": 64},
}


def schema_defaults(stage: str) -> dict:
    """The tiny recipe: every property's default from the stage's schema."""
    schema = yaml.safe_load((SCHEMA_DIR / f"{stage}.schema.yaml").read_text(encoding="utf-8"))
    return {key: copy.deepcopy(prop["default"]) for key, prop in schema["properties"].items()}


def _merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        out[key] = _merge(base[key], value) if isinstance(value, dict) else value
    return out


def micro_config(stage: str, seed: int = 0, threads: int = 1) -> dict:
    """A complete micro config for ``stage`` (with seed and threads, as the runner passes)."""
    return _merge(schema_defaults(stage), MICRO_OVERRIDES[stage]) | {
        "seed": seed,
        "threads": threads,
    }


MICRO_CONFIGS: dict[str, dict] = {stage: micro_config(stage) for stage in MICRO_OVERRIDES}


def run_stage(
    stage: str,
    config: dict,
    inputs: dict[str, pathlib.Path],
    output_dir: pathlib.Path,
    context: JobContext | None = None,
) -> dict:
    """Seed random/numpy/torch, pin threads, and call ``stages.<stage>.stage.run`` with the
    inputs as ``Input`` objects (manifests read when there are any) and a plain context."""
    import importlib

    import numpy as np

    random.seed(config["seed"])
    np.random.seed(config["seed"])
    try:
        import torch
    except ImportError:  # data stages do not need torch
        torch = None
    if torch is not None:
        torch.manual_seed(config["seed"])
        torch.set_num_threads(config["threads"])
    output_dir.mkdir(parents=True, exist_ok=False)
    run = importlib.import_module(f"stages.{stage}.stage").run
    return run(copy.deepcopy(config), as_inputs(inputs), output_dir, context or JobContext())


def save_random_tiny_model(tokenize_artifact: pathlib.Path, dest: pathlib.Path) -> pathlib.Path:
    """A random tiny OLMo 2 (hidden 64, 2 layers) with the real tokenizer, saved in ``dest``
    as a checkpoint's ``model/`` directory. Tests that need a model, not a trained one, use it."""
    import torch
    from transformers import AutoTokenizer, GenerationConfig, Olmo2Config, Olmo2ForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenize_artifact / "tokenizer")
    torch.manual_seed(0)
    cfg = Olmo2Config(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=1024,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=None,
    )
    model = Olmo2ForCausalLM(cfg)
    model.generation_config = GenerationConfig(
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id
    )
    model.save_pretrained(dest)
    tok.save_pretrained(dest)
    return dest
