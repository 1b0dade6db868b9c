"""soup: the weighted mean of checkpoints' weights, bitwise reproducible, refusing mismatches."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from reprolm.recipe import validate_stage_config
from stages.common.training import TrainingInputError
from tests.stages.micro import run_stage, save_random_tiny_model


def soup_config(checkpoints: list[str], **overrides) -> dict:
    config = {"checkpoints": checkpoints, "seed": 0, "threads": 1, **overrides}
    return validate_stage_config("soup", config)


def perturbed(source: Path, dest: Path, seed: int, dtype: str | None = None) -> Path:
    """A copy of checkpoint ``source`` (an artifact holding model/) with other weights."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(source / "model")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.1)
    if dtype is not None:
        model = model.to(getattr(torch, dtype))
    model.save_pretrained(dest / "model")
    AutoTokenizer.from_pretrained(source / "model").save_pretrained(dest / "model")
    return dest


@pytest.fixture(scope="module")
def models(tmp_path_factory, tokenize_artifact) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("soup")
    save_random_tiny_model(Path(tokenize_artifact), root / "pretrain" / "model")
    found = {"pretrain": root / "pretrain"}
    found["midtrain"] = perturbed(found["pretrain"], root / "midtrain", seed=1)
    # A pretraining step lies under the pretrain artifact (evals/steps.py).
    perturbed(found["pretrain"], root / "pretrain" / "steps" / "step-2", seed=2)
    found["bf16_a"] = perturbed(found["pretrain"], root / "bf16_a", seed=3, dtype="bfloat16")
    found["bf16_b"] = perturbed(found["pretrain"], root / "bf16_b", seed=4, dtype="bfloat16")
    return found


def tensors(artifact: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(artifact / "model" / "model.safetensors"))


def files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_the_soup_is_the_hand_computed_mean_and_bitwise(models, tmp_path):
    import torch

    inputs = {"model_midtrain": models["midtrain"], "model_pretrain": models["pretrain"]}
    config = soup_config(["midtrain", "pretrain"])
    metrics = run_stage("soup", config, inputs, tmp_path / "a")
    run_stage("soup", config, inputs, tmp_path / "b")
    assert files(tmp_path / "a") == files(tmp_path / "b"), "two runs differ"
    a, b, soup = tensors(models["midtrain"]), tensors(models["pretrain"]), tensors(tmp_path / "a")
    assert soup.keys() == a.keys() and metrics["tensors"] == len(a)
    changed = 0
    for name, value in soup.items():
        mean = ((a[name].double() + b[name].double()) / 2).to(a[name].dtype)
        assert value.dtype == a[name].dtype and torch.equal(value, mean), name
        changed += not torch.equal(value, a[name])
    assert changed, "the soup equals one of its checkpoints"
    record = json.loads((tmp_path / "a" / "soup.json").read_text())
    assert record["checkpoints"] == ["midtrain", "pretrain"] and record["weights"] == [0.5, 0.5]
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert AutoModelForCausalLM.from_pretrained(tmp_path / "a" / "model").config.model_type
    assert len(AutoTokenizer.from_pretrained(tmp_path / "a" / "model")) > 0


def test_weights_and_a_pretraining_step(models, tmp_path):
    import torch

    inputs = {"model_pretrain": models["pretrain"]}
    config = soup_config(["pretrain@step2", "pretrain"], weights=[1, 3])
    run_stage("soup", config, inputs, tmp_path / "out")
    step = tensors(models["pretrain"] / "steps" / "step-2")
    last, soup = tensors(models["pretrain"]), tensors(tmp_path / "out")
    for name, value in soup.items():
        mean = ((step[name].double() * 1 + last[name].double() * 3) / 4).to(torch.float32)
        assert torch.equal(value, mean), name


def test_bf16_checkpoints_are_averaged_in_float64_and_stored_in_bf16(models, tmp_path):
    import torch

    inputs = {"model_pretrain": models["bf16_a"], "model_midtrain": models["bf16_b"]}
    run_stage("soup", soup_config(["pretrain", "midtrain"]), inputs, tmp_path / "out")
    a, b, soup = tensors(models["bf16_a"]), tensors(models["bf16_b"]), tensors(tmp_path / "out")
    for name, value in soup.items():
        assert value.dtype == torch.bfloat16
        assert torch.equal(value, ((a[name].double() + b[name].double()) / 2).bfloat16())


def test_mismatched_checkpoints_are_refused(models, tmp_path, tokenize_artifact):
    from transformers import AutoTokenizer, Olmo2Config, Olmo2ForCausalLM

    config = soup_config(["pretrain", "midtrain"])
    # Another architecture (a wider model, same tokenizer).
    wide = tmp_path / "wide" / "model"
    tokenizer = AutoTokenizer.from_pretrained(models["pretrain"] / "model")
    shape = Olmo2Config.from_pretrained(models["pretrain"] / "model").to_dict()
    Olmo2ForCausalLM(Olmo2Config(**{**shape, "intermediate_size": 96})).save_pretrained(wide)
    tokenizer.save_pretrained(wide)
    inputs = {"model_pretrain": models["pretrain"], "model_midtrain": wide.parent}
    with pytest.raises(TrainingInputError, match=r"differ in architecture .*intermediate_size"):
        run_stage("soup", config, inputs, tmp_path / "a")
    # Another tokenizer (same shapes).
    other = tmp_path / "other"
    shutil.copytree(models["midtrain"], other)
    path = other / "model" / "tokenizer.json"
    data = json.loads(path.read_text())
    data["model"]["vocab"]["zzz-extra"] = len(data["model"]["vocab"]) + 100
    path.write_text(json.dumps(data))
    inputs = {"model_pretrain": models["pretrain"], "model_midtrain": other}
    with pytest.raises(TrainingInputError, match="different tokenizers"):
        run_stage("soup", config, inputs, tmp_path / "b")
    # Weights not one per checkpoint; a missing input.
    inputs = {"model_pretrain": models["pretrain"], "model_midtrain": models["midtrain"]}
    with pytest.raises(TrainingInputError, match=r"soup\.weights"):
        run_stage("soup", soup_config(["pretrain", "midtrain"], weights=[1, 2, 3]), inputs,
                  tmp_path / "c")  # fmt: skip
    with pytest.raises(TrainingInputError, match="needs input 'model_midtrain'"):
        run_stage("soup", config, {"model_pretrain": models["pretrain"]}, tmp_path / "d")
