"""A given tokenizer's content is pinned at plan time: editing the directory moves the tokenize
fingerprint; the pinned digest is the one the job computes over its copy."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from reprolm.pins import TOKENIZER_FILES
from reprolm.plan import Plan
from reprolm.recipe import RecipeError, load_recipe
from stages.tokenize import given

ROOT = Path(__file__).resolve().parents[2]


def plan_with(tokenizer: dict) -> Plan:
    value = yaml.safe_load((ROOT / "config" / "micro.yaml").read_text())
    value["tokenize"] = {**value["tokenize"], "tokenizer": tokenizer}
    return Plan(load_recipe(value))


def test_platform_and_job_copy_the_same_files() -> None:
    assert TOKENIZER_FILES == given.TOKENIZER_FILES


def test_the_pin_follows_the_content_and_matches_the_job(tmp_path: Path) -> None:
    source = tmp_path / "tok"
    source.mkdir()
    (source / "tokenizer.json").write_text('{"version": "1.0"}')
    (source / "tokenizer_config.json").write_text('{"eos_token": "<|endoftext|>"}')
    (source / "model.safetensors").write_bytes(b"weights are not part of a tokenizer")
    first = plan_with({"path": str(source)}).get("tokenize", "tokenize")
    pinned = first.config["tokenizer"]["digest"]
    assert pinned == given.copy_tokenizer({"path": str(source)}, tmp_path / "copy")
    (source / "model.safetensors").write_bytes(b"other weights")
    assert plan_with({"path": str(source)}).get("tokenize", "tokenize").fingerprint == (
        first.fingerprint
    )
    (source / "tokenizer_config.json").write_text('{"eos_token": "</s>"}')
    edited = plan_with({"path": str(source)}).get("tokenize", "tokenize")
    assert edited.fingerprint != first.fingerprint
    assert edited.config["tokenizer"]["digest"] != pinned
    # A recipe's own pin is kept (and checked by the job).
    own = plan_with({"path": str(source), "digest": "f" * 64}).get("tokenize", "tokenize")
    assert own.config["tokenizer"]["digest"] == "f" * 64


def test_a_missing_tokenizer_fails_the_plan_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match=r"tokenize\.tokenizer\.path=.*no tokenizer\.json"):
        plan_with({"path": str(tmp_path / "absent")})
