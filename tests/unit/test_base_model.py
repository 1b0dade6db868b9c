"""An external HF-format base model registered as a source artifact (recipes that do not
pretrain), and the vLLM options' errors where vLLM is missing (it is GPU only)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from reprolm.fingerprint import fingerprint
from reprolm.recipe import validate_stage_config
from reprolm.runner import execute
from stages.base_model.stage import BaseModelError, run
from stages.common.vllm import VllmMissingError, grpo_vllm_args, lm_eval_vllm

LEVEL = {"level": "bitwise"}


def model_dir(where: Path) -> Path:
    where.mkdir()
    (where / "config.json").write_text(json.dumps({"model_type": "llama"}))
    (where / "model.safetensors").write_bytes(b"weights")
    (where / "tokenizer.json").write_text("{}")
    return where


def register(tmp_path: Path, source: Path, digest: str | None = None) -> dict:
    config = validate_stage_config(
        "base_model", {"path": str(source), "digest": digest, "seed": 0, "threads": 1}
    )
    out = Path("artifacts/base_model") / f"base_model-{fingerprint('base_model', config, {})}"
    return execute("base_model", run, config, {}, out, reproducibility=LEVEL, uses_torch=False)


def test_the_base_model_is_copied_hashed_and_pinnable(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = model_dir(tmp_path / "llama")
    (source / "pytorch_model.bin").write_bytes(b"pickle")  # never copied
    manifest = register(tmp_path, source)
    assert sorted(manifest["files"]) == [
        "model/config.json", "model/model.safetensors", "model/tokenizer.json",
    ]  # fmt: skip
    assert register(tmp_path, source, manifest["digest"])["digest"] == manifest["digest"]
    (source / "config.json").write_text(json.dumps({"model_type": "llama", "changed": 1}))
    with pytest.raises(BaseModelError, match=r"base_model\.digest=.* hashes to"):
        register(tmp_path, source, manifest["digest"])


def test_a_directory_without_config_or_safetensors_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BaseModelError, match=r"base_model\.path=.*no config\.json"):
        register(tmp_path, tmp_path)
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text("{}")
    (pickled / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(BaseModelError, match="only pickle weights"):
        register(tmp_path, pickled)


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed")
def test_vllm_options_fail_clearly_without_vllm(tmp_path):
    assert grpo_vllm_args({}) == {}
    with pytest.raises(VllmMissingError, match=r"rlvr\.use_vllm asks for vLLM.*`gpu` extra"):
        grpo_vllm_args({"use_vllm": True})
    with pytest.raises(VllmMissingError, match=r"evaluate\.backend=vllm"):
        lm_eval_vllm(tmp_path, {"seed": 0})


def test_vllm_options_reach_trl(monkeypatch):
    from trl import GRPOConfig

    # vLLM cannot be installed here (GPU only): pretend it is, to see what TRL receives.
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())
    args = grpo_vllm_args({"use_vllm": True, "vllm_gpu_memory_utilization": 0.3})
    assert args == {"use_vllm": True, "vllm_mode": "colocate", "vllm_gpu_memory_utilization": 0.3}
    assert set(args) <= set(GRPOConfig.__dataclass_fields__)


def test_vllm_server_mode_connects_to_this_machine_only(monkeypatch):
    """TRL's client default is 0.0.0.0; reprolm talks to a `trl vllm-serve` on 127.0.0.1."""
    from trl import GRPOConfig

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())
    args = grpo_vllm_args({"use_vllm": True, "vllm_mode": "server"})
    assert args["vllm_server_host"] == "127.0.0.1"
    assert set(args) <= set(GRPOConfig.__dataclass_fields__)
