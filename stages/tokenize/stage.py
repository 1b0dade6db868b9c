"""tokenize stage: train the byte-level BPE, save it with its ChatML template, and write the
curated pretraining documents as uint16 token shards."""

from __future__ import annotations

import pathlib

from stages.common.job import Input, JobContext
from stages.common.jsonl import read_jsonl, write_json
from stages.tokenize.bpe import EOS, pin_threads, train_bpe, wrap
from stages.tokenize.chat import check_assistant_mask
from stages.tokenize.shards import UINT16_LIMIT, write_shards

# A multi-turn conversation (with a system turn) checked besides the first SFT rows.
PROBE = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is 2 + 3?"},
    {"role": "assistant", "content": "2 + 3 = 5. The answer is 5."},
    {"role": "user", "content": "Answer in lowercase letters only: where is the cat?"},
    {"role": "assistant", "content": "the cat is in the box."},
]


def _corpus(
    data: pathlib.Path,
) -> tuple[list[str], list[str], list[list[dict]], list[list[dict]]]:
    """(pretrain texts, BPE training texts, SFT conversations, mid-training conversations)."""
    pretrain = [row["text"] for row in read_jsonl(data / "pretrain.jsonl", ("id", "text"))]
    sft = [row["messages"] for row in read_jsonl(data / "sft.jsonl", ("id", "messages"))]
    midtrain_file = data / "midtrain.jsonl"
    midtrain = (
        [row["messages"] for row in read_jsonl(midtrain_file, ("id", "messages"))]
        if midtrain_file.is_file()
        else []
    )
    preference = read_jsonl(data / "preference.jsonl", ("id", "prompt", "chosen", "rejected"))
    texts = list(pretrain)
    texts += [m["content"] for messages in sft + midtrain for m in messages]
    texts += [
        m["content"] for r in preference for k in ("prompt", "chosen", "rejected") for m in r[k]
    ]
    return pretrain, texts, sft, midtrain


def run(
    config: dict, inputs: dict[str, Input], output_dir: pathlib.Path, context: JobContext
) -> dict:
    """Write tokenizer/ and shards/ (see docs/stages/tokenize.md); return sizes."""
    if "curate" not in inputs:
        raise KeyError("tokenize: needs input 'curate' (a curate artifact directory)")
    if config["vocab_size"] >= UINT16_LIMIT:
        raise ValueError(f"tokenize: vocab_size={config['vocab_size']} must be < 65536 (uint16)")
    pin_threads(config["threads"])
    from transformers import PreTrainedTokenizerFast

    pretrain, texts, sft, midtrain = _corpus(inputs["curate"].path / "data")
    bpe = train_bpe(texts, config["vocab_size"], config["min_frequency"])
    tok_dir = output_dir / "tokenizer"
    wrap(bpe, config["model_max_length"]).save_pretrained(tok_dir)

    # Check the tokenizer as consumers load it, from the saved files.
    tokenizer = PreTrainedTokenizerFast.from_pretrained(tok_dir, local_files_only=True)
    for messages in [PROBE, *sft[: config["mask_checks"]]]:
        check_assistant_mask(tokenizer, messages)

    eos_id = tokenizer.convert_tokens_to_ids(EOS)
    # Mid-training conversations enter the pretraining mix rendered with the chat template, so
    # the base model has seen the chat format before SFT (the special tokens encode as such).
    rendered = (
        [tokenizer.apply_chat_template(m, tokenize=False) for m in midtrain]
        if config["midtrain"]
        else []
    )
    docs = [enc.ids for enc in bpe.encode_batch(pretrain + rendered, add_special_tokens=False)]
    files = write_shards(docs, eos_id, output_dir / "shards", config["shard_tokens"])
    vocab = bpe.get_vocab_size()
    write_json(
        output_dir / "shards" / "index.json",
        {"dtype": "uint16", "eos_token_id": eos_id, "vocab_size": vocab, "files": files},
    )
    tokens = sum(f["tokens"] for f in files)
    return {
        "vocab_size": vocab,
        "tokens": tokens,
        "documents": len(docs),
        "midtrain_documents": len(rendered),
        "shards": len(files),
        "chars_per_token": sum(map(len, pretrain + rendered)) / max(tokens, 1),
    }
