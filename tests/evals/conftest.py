"""A tiny random OLMo 2 with a BPE tokenizer trained on the fixtures (built in seconds, offline)."""

from __future__ import annotations

import json
import pathlib

import pytest

# Test inputs are the bundled files themselves (one copy each, with licenses and SOURCE.md):
# few-shot pools in evals/data/, default datasets in data/eval/.
ROOT = pathlib.Path(__file__).resolve().parents[2]
EVALS_DATA = ROOT / "evals" / "data"
EVAL_DATA = ROOT / "data" / "eval"
ARC_EASY = EVALS_DATA / "olmes_arc_easy_fewshot.jsonl"
ARC_CHALLENGE = EVALS_DATA / "olmes_arc_challenge_fewshot.jsonl"
GSM8K_TEST = EVAL_DATA / "gsm8k" / "test_sample.jsonl"
GSM8K_SHOTS = EVALS_DATA / "tulu_gsm8k_8shot_cot.jsonl"
IFEVAL_DATA = EVAL_DATA / "ifeval" / "input_sample.jsonl"


def build_tiny_model(dest: pathlib.Path) -> pathlib.Path:
    """Train a 400-token byte-level BPE on the ARC fixtures; save it with a random OLMo 2."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Olmo2Config, Olmo2ForCausalLM, PreTrainedTokenizerFast

    texts = []
    for path in (ARC_EASY, ARC_CHALLENGE):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            texts += [row["question"], *row["choices"]["text"]]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "<|pad|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|pad|>"
    )
    torch.manual_seed(0)
    cfg = Olmo2Config(
        vocab_size=len(hf_tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=2048,
        pad_token_id=hf_tok.pad_token_id,
        eos_token_id=hf_tok.eos_token_id,
        bos_token_id=None,
    )
    Olmo2ForCausalLM(cfg).save_pretrained(dest)
    hf_tok.save_pretrained(dest)
    return dest


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> pathlib.Path:
    import torch

    torch.set_num_threads(1)
    return build_tiny_model(tmp_path_factory.mktemp("evalspec") / "model")
