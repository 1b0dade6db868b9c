"""SFT packing (no attention across packed conversations) and the record of truncation."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from reprolm.recipe import RecipeError, load_recipe
from stages.common.job import as_inputs
from tests.stages.test_training import payload_files, read_json, run_stage, stage_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sft_inputs(tmp_path_factory, tokenize_artifact, curate_artifact) -> dict[str, Path]:
    """A micro pretrain checkpoint and the curate artifact: what SFT reads."""
    out = tmp_path_factory.mktemp("packing") / "pretrain"
    run_stage("pretrain", stage_config("pretrain"), {"tokenize": Path(tokenize_artifact)}, out)
    return {"model": out, "data": Path(curate_artifact)}


def _trainer(sft_inputs: dict[str, Path], scratch: Path, **overrides):
    from stages.sft.stage import build_trainer

    return build_trainer(stage_config("sft", **overrides), as_inputs(sft_inputs), scratch)


def _segments(position_ids) -> list[tuple[int, int]]:
    """(start, end) of each conversation in a packed row: position ids restart at 0."""
    starts = (position_ids == 0).nonzero().flatten().tolist()
    return list(zip(starts, [*starts[1:], len(position_ids)], strict=True))


def test_packed_conversations_attend_only_to_themselves(sft_inputs, tmp_path):
    """Logits of each conversation inside a packed row equal its logits alone; with a plain
    causal mask over the row (what packing without per-sequence attention does) they differ."""
    import torch

    trainer = _trainer(sft_inputs, tmp_path, packing=True)
    batch = next(iter(trainer.get_train_dataloader()))
    assert "attention_mask" not in batch  # padding-free: the mask comes from position_ids
    ids, positions = batch["input_ids"], batch["position_ids"]
    assert ids.shape[0] == 1  # the packed rows of the batch are one padding-free row
    segments = _segments(positions[0])
    assert len(segments) > stage_config("sft")["batch_size"]  # more conversations than rows
    model = trainer.model.eval()
    with torch.no_grad():
        packed = model(input_ids=ids, position_ids=positions).logits[0]
        leaked = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0]
        for start, end in segments:
            alone = model(input_ids=ids[:, start:end]).logits[0]
            torch.testing.assert_close(packed[start:end], alone, rtol=1e-5, atol=1e-5)
            # The first token of a conversation is never the target of the previous one.
            assert batch["labels"][0, start] == -100
    later = [(s, e) for s, e in segments if s > 0]
    assert any(not torch.allclose(leaked[s:e], packed[s:e], atol=1e-4) for s, e in later)


def test_packing_keeps_every_conversation_once(sft_inputs, tmp_path):
    """bfd packs the same token sequences the unpacked run trains on (each exactly once)."""
    packed = _trainer(sft_inputs, tmp_path / "packed", packing=True)
    plain = _trainer(sft_inputs, tmp_path / "plain")
    pieces = Counter()
    for row, lengths in zip(
        packed.train_dataset["input_ids"], packed.train_dataset["seq_lengths"], strict=True
    ):
        assert len(row) <= stage_config("sft")["max_length"]
        start = 0
        for length in lengths:
            pieces[tuple(row[start : start + length])] += 1
            start += length
    assert pieces == Counter(tuple(ids) for ids in plain.train_dataset["input_ids"])
    record = packed.sequences
    assert record["packing"] and record["packing_strategy"] == "bfd"
    assert record["sequences"] == len(packed.train_dataset) < record["examples"]
    assert record["tokens_trained"] == plain.sequences["tokens_trained"]
    assert 0 < record["fill"] <= 1


def test_truncation_is_recorded(sft_inputs, tmp_path):
    """The counts in training/sequences.json, checked against the chat template's own lengths."""
    from stages.sft.stage import load_messages

    limit = 40
    trainer = _trainer(sft_inputs, tmp_path, max_length=limit)
    tokenizer = trainer.processing_class
    lengths = [
        len(
            tokenizer.apply_chat_template(row["messages"], tokenize=True, return_dict=True)[
                "input_ids"
            ]
        )
        for row in load_messages(sft_inputs["data"])
    ]
    record = trainer.sequences
    assert record["examples"] == len(lengths)
    assert record["examples_over_max_length"] == sum(n > limit for n in lengths) > 0
    assert record["tokens"] == sum(lengths)
    assert record["longest_example"] == max(lengths)
    trained = [len(ids) for ids in trainer.train_dataset["input_ids"]]
    assert max(trained) == limit
    assert record["tokens_trained"] == sum(trained)
    dropped = record["examples_dropped_fully_masked"]
    assert record["sequences"] == len(lengths) - dropped
    if dropped == 0:
        assert record["tokens_dropped"] == sum(max(0, n - limit) for n in lengths)
    assert record["supervised_tokens_trained"] < record["supervised_tokens"]


def test_packed_sft_writes_its_record_and_is_bitwise(sft_inputs, tmp_path):
    config = stage_config(
        "sft", packing=True, packing_strategy="bfd_split", max_length=48, learning_rate=0.003
    )
    runs = []
    for name in ("a", "b"):
        metrics = run_stage("sft", config, sft_inputs, tmp_path / name)
        runs.append(payload_files(tmp_path / name))
    assert runs[0] == runs[1]
    record = read_json(tmp_path / "a" / "training" / "sequences.json")
    assert record["packing_strategy"] == "bfd_split"
    assert record["tokens_dropped"] == 0  # bfd_split packs the overflow instead of dropping it
    assert record["examples_over_max_length"] > 0
    assert metrics["sequences"] == record["sequences"]
    assert metrics["last_loss"] < metrics["first_loss"]


def test_packing_strategy_needs_packing():
    with pytest.raises(RecipeError, match=r"sft\.packing_strategy: bfd_split has no effect"):
        load_recipe({"name": "t", "sft": {"packing_strategy": "bfd_split"}})
    with pytest.raises(RecipeError, match=r"sft\.packing_strategy"):
        load_recipe({"name": "t", "sft": {"packing": True, "packing_strategy": "wrapped"}})
