"""Complement coercion with a SentencePiece-style (Unigram, ``▁``-prefixed) tokenizer and a
byte-level BPE one: region surprisals equal a direct forward pass over the start token id + the
sentence's tokens (sum of -log2 p over each region's tokens, regions found by character offsets),
and the old text prefix ("<s>The") is shown to lose the word-start marker."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from evals import coercion, sources
from evals.families import RunOptions, family_of
from evals.registry import get_spec

STIMULI = sources.bundled(coercion.STIMULI)


def _texts() -> list[str]:
    return ["".join(g["text"] for g in row["regions"]) for row in sources.read_jsonl(STIMULI)]


def _unigram():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    trainer = trainers.UnigramTrainer(
        vocab_size=300, special_tokens=["<unk>", "<s>", "</s>"], unk_token="<unk>",
        show_progress=False,
    )  # fmt: skip
    tok.train_from_iterator(_texts(), trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )


def _byte_level():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )  # fmt: skip
    tok.train_from_iterator(_texts(), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>")


def _model(dest: Path, hf_tok) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(hf_tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256,
        bos_token_id=hf_tok.bos_token_id, eos_token_id=hf_tok.eos_token_id,
    )  # fmt: skip
    LlamaForCausalLM(cfg).save_pretrained(dest, safe_serialization=True)
    hf_tok.save_pretrained(dest)
    return dest


def direct_bits(lm, start_id: int, regions: list[str]) -> list[float]:
    """Sum of -log2 p per region from one forward pass over [start id] + the sentence's ids;
    a token belongs to the region holding its last character."""
    import torch

    sentence = "".join(regions)
    enc = lm.tokenizer(sentence, add_special_tokens=False, return_offsets_mapping=True)
    ids = [start_id, *enc["input_ids"]]
    with torch.no_grad():
        logits = lm.model(torch.tensor([ids])).logits[0].double()
    token_bits = -torch.log_softmax(logits, dim=-1) / math.log(2)
    ends, edge = [], 0
    for text in regions:
        edge += len(text)
        ends.append(edge)
    out = [0.0] * len(regions)
    for j, (_, end) in enumerate(enc["offset_mapping"]):
        k = next(i for i, e in enumerate(ends) if end - 1 < e)
        out[k] += float(token_bits[j, ids[j + 1]])
    return out


@pytest.fixture(scope="module", params=["unigram", "byte_level"])
def scored(request, tmp_path_factory):
    import torch

    from evals import lmeval

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp(request.param)
    hf_tok = _unigram() if request.param == "unigram" else _byte_level()
    lm = lmeval.load_model(_model(root / "model", hf_tok))
    spec = get_spec("complement_coercion::surprisal")
    result = family_of(spec).evaluate(
        spec, root / "model", STIMULI, root / "out", RunOptions(lm=lm, limit=4)
    )
    return request.param, lm, result, sources.read_jsonl(root / "out" / "predictions.jsonl")


def test_region_surprisals_equal_a_direct_forward_pass(scored):
    kind, lm, result, rows = scored
    start_id = result["harness"]["sentence_start_id"]
    tok = lm.tokenizer
    # bos where the tokenizer has one (Unigram: <s>), else eos (byte-level: <|endoftext|>)
    assert start_id == (tok.bos_token_id if kind == "unigram" else tok.eos_token_id)
    assert len(rows) == 8
    for row in rows:
        regions = [g["text"] for g in row["regions"]]
        expected = direct_bits(lm, start_id, regions)
        got = [g["surprisal_bits"] for g in row["regions"]]
        assert got == pytest.approx(expected, abs=1e-4)


def test_the_text_prefix_loses_the_word_start_marker_on_unigram():
    """Why the start token goes in as an id: as text, "<s>The" encodes "The" unmarked."""
    tok = _unigram()
    first = sources.read_jsonl(STIMULI)[0]["regions"][0]["text"]  # "The editor"
    by_id = tok.encode(first, add_special_tokens=False)
    by_text = tok.encode("<s>" + first, add_special_tokens=False)
    assert by_text[0] == tok.bos_token_id
    assert tok.convert_ids_to_tokens(by_id[0]).startswith("▁")
    assert by_text[1:] != by_id and not tok.convert_ids_to_tokens(by_text[1]).startswith("▁")


class _CharLM:
    """A stand-in whose tokenizer glues "ab" into one token across a region boundary."""

    prefix_token_id = None

    def tok_encode(self, text, add_special_tokens=False):
        return [ord(c) for c in text.replace("a b", "\0")]


def test_bad_tokenizers_are_refused_with_the_item_and_region():
    rows = [{"item": 7, "condition": "control", "regions": [
        {"name": "subject", "text": "a"}, {"name": "verb", "text": " b"}]}]  # fmt: skip
    with pytest.raises(ValueError, match=r"item 7 \(control\): region 'verb' does not start on"):
        coercion.region_requests(_CharLM(), rows, 1)
    with pytest.raises(ValueError, match="neither a bos nor an eos"):
        coercion.start_token(_CharLM())
