"""tokenize stage: train a byte-level BPE (or copy a given HF tokenizer), save it, and stream
the curated pretraining documents into token shards and the data-order file.

With `tokenize.shards` above 1 (a given tokenizer) the documents come encoded from
tokenize_shard jobs (inputs ``shard_<range>``, stages/tokenize/gather.py); the payload is the
same either way."""

from __future__ import annotations

import itertools
import pathlib
from typing import Any

from stages.common.job import Input, JobContext
from stages.common.jsonl import write_json
from stages.common.progress import Progress
from stages.tokenize.bpe import IM_END, pin_threads, train_bpe, wrap
from stages.tokenize.chat import check_assistant_mask
from stages.tokenize.corpus import bpe_texts, conversations
from stages.tokenize.documents import count_document, count_documents, documents, encode_batches
from stages.tokenize.gather import encoded_dirs, gather_encoded
from stages.tokenize.given import (
    GENERATION_BLOCK,
    TokenizerError,
    copy_tokenizer,
    has_generation_block,
    load_given,
)
from stages.tokenize.order import write_order
from stages.tokenize.shards import UINT16_LIMIT, ShardWriter, shard_dtype

# A multi-turn conversation (with a system turn) checked besides the first SFT rows.
PROBE = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is 2 + 3?"},
    {"role": "assistant", "content": "2 + 3 = 5. The answer is 5."},
    {"role": "user", "content": "Answer in lowercase letters only: where is the cat?"},
    {"role": "assistant", "content": "the cat is in the box."},
]


def _trained(config: dict, data: pathlib.Path, tok_dir: pathlib.Path) -> Any:
    """Train the BPE on a stream of the curated texts, save it, and check its chat mask."""
    from transformers import PreTrainedTokenizerFast

    bpe = train_bpe(bpe_texts(data), config["vocab_size"], config["min_frequency"])
    wrap(bpe, config["model_max_length"]).save_pretrained(tok_dir)
    # Check the tokenizer as consumers load it, from the saved files.
    tokenizer = PreTrainedTokenizerFast.from_pretrained(tok_dir, local_files_only=True)
    sft = itertools.islice(conversations(data, "sft"), config["mask_checks"])
    for messages in [PROBE, *sft]:
        check_assistant_mask(tokenizer, messages, IM_END)
    return tokenizer


def _given(config: dict, data: pathlib.Path, tok_dir: pathlib.Path) -> Any:
    """Copy and load ``tokenize.tokenizer``; check its mask on SFT rows when it can."""
    copy_tokenizer(config["tokenizer"], tok_dir)
    tokenizer = load_given(tok_dir)
    checks = config["mask_checks"]
    if not has_generation_block(tokenizer):
        if checks:
            raise TokenizerError(
                f"tokenize.tokenizer.path: the chat template has no {GENERATION_BLOCK} block, so "
                "the assistant-token mask cannot be checked, and SFT with assistant-only loss "
                "needs such a template; give a tokenizer whose template wraps assistant turns in "
                f"{GENERATION_BLOCK}...{{% endgeneration %}}, or set tokenize.mask_checks: 0"
            )
        return tokenizer
    for messages in itertools.islice(conversations(data, "sft"), checks):
        check_assistant_mask(tokenizer, messages, end=None)
    return tokenizer


def _encode(config: dict, data: pathlib.Path, tokenizer: Any, writer: ShardWriter) -> tuple:
    """Encode the whole document stream into ``writer``; (per-source counts, characters)."""
    # Mid-training conversations enter the pretraining mix rendered with the chat template, so
    # the base model has seen the chat format before SFT (the special tokens encode as such).
    chars = 0
    per_source: dict[str, dict[str, int]] = {}  # the mix as tokens: documents, tokens (+ eos)
    stream = documents(config, data, tokenizer)
    with Progress("tokenize", count_documents(config, data), "document") as progress:
        for batch, encoded in encode_batches(tokenizer, stream):
            writer.add(encoded, [source for _, source in batch])
            for (_, source), ids in zip(batch, encoded, strict=True):
                count_document(per_source, source, len(ids) + 1)
            chars += sum(len(text) for text, _ in batch)
            progress.update(len(batch))
    return per_source, chars


def run(
    config: dict, inputs: dict[str, Input], output_dir: pathlib.Path, context: JobContext
) -> dict:
    """Write tokenizer/, shards/ and order/ (see docs/stages/tokenize.md); return sizes."""
    if "curate" not in inputs:
        raise KeyError("tokenize: needs input 'curate' (a curate artifact directory)")
    given = config.get("tokenizer") is not None
    if not given and config["vocab_size"] >= UINT16_LIMIT:
        raise ValueError(f"tokenize: vocab_size={config['vocab_size']} must be < 65536 (uint16)")
    pin_threads(config["threads"])
    data, tok_dir = inputs["curate"].path / "data", output_dir / "tokenizer"
    tokenizer = (_given if given else _trained)(config, data, tok_dir)

    vocab = len(tokenizer)
    writer = ShardWriter(
        output_dir / "shards", tokenizer.eos_token_id, config["shard_tokens"], shard_dtype(vocab)
    )
    if config["shards"] > 1 or any(name.startswith("shard_") for name in inputs):
        if not given:
            raise TokenizerError(
                f"tokenize.shards={config['shards']} needs tokenize.tokenizer (a BPE is trained "
                "on the whole corpus in one job)"
            )
        dirs = encoded_dirs(inputs, config["shards"], tokenizer.eos_token_id, writer.dtype)
        per_source, chars = gather_encoded(dirs, writer)
    else:
        per_source, chars = _encode(config, data, tokenizer, writer)
    documents = sum(counts["documents"] for counts in per_source.values())
    files = writer.close()
    tokens = [f["tokens"] for f in files]
    order = write_order(output_dir, tokens, config["seq_len"], config["epochs"], config["seed"])
    write_json(
        output_dir / "shards" / "index.json",
        {
            "dtype": writer.dtype,
            "eos_token_id": tokenizer.eos_token_id,
            "vocab_size": vocab,
            "files": files,
            "order": order,
            "sources": dict(sorted(per_source.items())),
        },
    )
    return {
        "vocab_size": vocab,
        "tokens": sum(tokens),
        "documents": documents,
        "midtrain_documents": per_source.get("midtrain", {}).get("documents", 0),
        "shards": len(files),
        "windows": order["windows"],
        "chars_per_token": chars / max(sum(tokens), 1),
        **{f"tokens.{source}": counts["tokens"] for source, counts in sorted(per_source.items())},
    }
