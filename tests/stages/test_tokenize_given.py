"""tokenize with a given HF tokenizer (tokenize.tokenizer): copy, digest pin, chat template
rules, and uint32 shards for a vocabulary over 65,535 that pretrain reads and trains on."""

from __future__ import annotations

import json
import pathlib
import shutil

import numpy as np
import pytest

from reprolm.hashing import hash_payload, payload_digest
from stages.tokenize.given import TokenizerError
from tests.stages.micro import micro_config, run_stage
from tests.stages.test_training import run_stage as run_training
from tests.stages.test_training import stage_config

BIG_VOCAB = 70_000
# Like Llama 3's: an eos, no pad token, no ChatML tokens (pretrain pads with eos).
SPECIALS = ["<|endoftext|>", "[UNK]"]


def _texts(curate_artifact: pathlib.Path) -> list[str]:
    lines = (curate_artifact / "data" / "pretrain.jsonl").read_text("utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines]


def save_big_tokenizer(curate_artifact: pathlib.Path, dest: pathlib.Path) -> pathlib.Path:
    """A word-level tokenizer of 70,000 entries: specials first, filler, and the micro corpus's
    words last, so that every word id is above 65,535."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    split = pre_tokenizers.Whitespace()
    words = sorted({w for t in _texts(curate_artifact) for w, _ in split.pre_tokenize_str(t)})
    filler = [f"filler{i}" for i in range(BIG_VOCAB - len(SPECIALS) - len(words))]
    vocab = {token: i for i, token in enumerate([*SPECIALS, *filler, *words])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = split
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|endoftext|>",
        unk_token="[UNK]",
    )
    assert len(tokenizer) == BIG_VOCAB and min(vocab[w] for w in words) > 65_535
    tokenizer.save_pretrained(dest)
    return dest


def given_config(path: pathlib.Path, **overrides) -> dict:
    return micro_config("tokenize") | {"tokenizer": {"path": str(path)}} | overrides


@pytest.fixture(scope="module")
def big_tokenize(tmp_path_factory, curate_artifact) -> pathlib.Path:
    where = tmp_path_factory.mktemp("big")
    source = save_big_tokenizer(curate_artifact, where / "source")
    config = given_config(source, midtrain=False, mask_checks=0)  # no chat template
    run_stage("tokenize", config, {"curate": curate_artifact}, where / "artifact")
    return where / "artifact"


def test_big_vocabulary_gives_uint32_shards(big_tokenize, curate_artifact) -> None:
    from transformers import AutoTokenizer

    index = json.loads((big_tokenize / "shards" / "index.json").read_text())
    assert index["dtype"] == "uint32" and index["vocab_size"] == BIG_VOCAB
    tokenizer = AutoTokenizer.from_pretrained(big_tokenize / "tokenizer", local_files_only=True)
    parts = []
    for entry in index["files"]:
        path = big_tokenize / entry["path"]
        assert path.stat().st_size == 4 * entry["tokens"]
        parts.append(np.fromfile(path, dtype="<u4"))
    tokens = np.concatenate(parts)
    assert int(tokens.max()) > 65_535 and int(tokens.max()) < BIG_VOCAB
    assert (tokens > 65_535).sum() > tokens.size // 2  # the words really are the high ids
    eos = tokenizer.eos_token_id
    expected = [t for text in _texts(curate_artifact) for t in (*tokenizer.encode(text), eos)]
    assert tokens.tolist() == expected


def test_pretrain_reads_uint32_shards_and_trains(big_tokenize, tmp_path) -> None:
    import torch

    config = stage_config("pretrain", steps=3, batch_size=2, logging_steps=1)
    metrics = run_training("pretrain", config, {"tokenize": big_tokenize}, tmp_path / "p")
    assert metrics["steps"] == 3 and np.isfinite(metrics["last_loss"])
    from stages.pretrain.data import make_dataset, open_order, open_shards

    shards = open_shards(big_tokenize, BIG_VOCAB)
    assert shards[0].dtype == np.dtype("<u4")
    order = open_order(big_tokenize, shards, 64, samples=6)
    first = next(iter(make_dataset(shards, 64, order)[0]))["input_ids"]
    assert first.dtype == torch.int64 and int(first.max()) > 65_535
    saved = json.loads((tmp_path / "p" / "model" / "config.json").read_text())
    assert saved["vocab_size"] == BIG_VOCAB
    assert saved["pad_token_id"] == saved["eos_token_id"] == 0  # no pad token: eos pads


def test_given_tokenizer_is_copied_and_pinned(tmp_path, tokenize_artifact, curate_artifact) -> None:
    """The trained micro tokenizer given back as a directory: the same shards, and its digest
    pin checked."""
    source = tokenize_artifact / "tokenizer"
    digest = payload_digest(hash_payload(source))
    config = given_config(source) | {"tokenizer": {"path": str(source), "digest": digest}}
    run_stage("tokenize", config, {"curate": curate_artifact}, tmp_path / "ok")
    for rel in ["tokenizer/tokenizer.json", "shards/part-00000.npy", "order/global_indices.npy"]:
        assert (tmp_path / "ok" / rel).read_bytes() == (tokenize_artifact / rel).read_bytes()
    wrong = config | {"tokenizer": {"path": str(source), "digest": "0" * 64}}
    with pytest.raises(TokenizerError, match=rf"tokenize\.tokenizer\.digest=0+ but .* {digest}"):
        run_stage("tokenize", wrong, {"curate": curate_artifact}, tmp_path / "pinned")


def test_bad_given_tokenizers_are_refused(tmp_path, big_tokenize, curate_artifact) -> None:
    inputs = {"curate": curate_artifact}
    with pytest.raises(TokenizerError, match=r"tokenize\.tokenizer\.path=.*no tokenizer\.json"):
        run_stage("tokenize", given_config(tmp_path), inputs, tmp_path / "a")
    # No {% generation %} block (here no template at all): the mask cannot be checked.
    source = big_tokenize / "tokenizer"
    with pytest.raises(TokenizerError, match=r"assistant-only loss.*tokenize\.mask_checks: 0"):
        run_stage("tokenize", given_config(source, midtrain=False), inputs, tmp_path / "b")
    with pytest.raises(TokenizerError, match=r"tokenize\.midtrain"):
        run_stage("tokenize", given_config(source, mask_checks=0), inputs, tmp_path / "c")
    no_eos = tmp_path / "no-eos"
    shutil.copytree(source, no_eos)
    settings = json.loads((no_eos / "tokenizer_config.json").read_text())
    settings.pop("eos_token")
    (no_eos / "tokenizer_config.json").write_text(json.dumps(settings))
    special = no_eos / "special_tokens_map.json"
    if special.is_file():
        mapping = json.loads(special.read_text())
        mapping.pop("eos_token", None)
        special.write_text(json.dumps(mapping))
    with pytest.raises(TokenizerError, match=r"no eos token"):
        run_stage("tokenize", given_config(no_eos, mask_checks=0), inputs, tmp_path / "d")
