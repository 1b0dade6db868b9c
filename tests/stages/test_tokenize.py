"""tokenize stage: tokenizer files and specials, assistant mask, shards, determinism."""

from __future__ import annotations

import itertools
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from stages.tokenize.chat import check_assistant_mask
from tests.stages.micro import micro_config, run_stage

REPO = pathlib.Path(__file__).resolve().parents[2]
CONV = [
    {"role": "user", "content": "What is 3 + 4?"},
    {"role": "assistant", "content": "3 + 4 = 7. The answer is 7."},
    {"role": "user", "content": "Where does Mia live? Answer in lowercase letters only."},
    {"role": "assistant", "content": "mia lives in paris."},
]


@pytest.fixture(scope="module")
def tokenizer(tokenize_artifact: pathlib.Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenize_artifact / "tokenizer")


def test_tokenizer_files_and_special_tokens(tokenize_artifact: pathlib.Path, tokenizer) -> None:
    names = {p.name for p in (tokenize_artifact / "tokenizer").iterdir()}
    assert {"tokenizer.json", "tokenizer_config.json", "chat_template.jinja"} <= names
    assert tokenizer.eos_token == "<|endoftext|>" and tokenizer.pad_token == "<|pad|>"
    assert tokenizer.bos_token is None
    ids = tokenizer.convert_tokens_to_ids(
        ["<|endoftext|>", "<|pad|>", "<|im_start|>", "<|im_end|>"]
    )
    assert ids == [0, 1, 2, 3]
    assert tokenizer("What is 3 + 4?")["input_ids"][0] not in ids  # no BOS added
    text = "Question: What is 12 + 7?\nAnswer: 19"
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text  # byte-level round trip
    assert (
        len(tokenizer)
        == json.loads((tokenize_artifact / "shards" / "index.json").read_text())["vocab_size"]
    )


def test_chat_template_masks_exactly_assistant_content(tokenizer) -> None:
    out = tokenizer.apply_chat_template(
        CONV, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids, mask = out["input_ids"], out["assistant_masks"]
    masked = tokenizer.decode([t for t, m in zip(ids, mask, strict=True) if m])
    assert masked == "3 + 4 = 7. The answer is 7.<|im_end|>mia lives in paris.<|im_end|>"
    unmasked = tokenizer.decode([t for t, m in zip(ids, mask, strict=True) if not m])
    assert unmasked == (
        "<|im_start|>user\nWhat is 3 + 4?<|im_end|>\n<|im_start|>assistant\n\n"
        "<|im_start|>user\nWhere does Mia live? Answer in lowercase letters only.<|im_end|>\n"
        "<|im_start|>assistant\n\n"
    )
    check_assistant_mask(tokenizer, CONV)


def test_generation_prompt(tokenizer) -> None:
    text = tokenizer.apply_chat_template(CONV[:1], tokenize=False, add_generation_prompt=True)
    assert text == "<|im_start|>user\nWhat is 3 + 4?<|im_end|>\n<|im_start|>assistant\n"
    plain = tokenizer.apply_chat_template(CONV[:1], tokenize=False)
    assert plain == "<|im_start|>user\nWhat is 3 + 4?<|im_end|>\n"


def test_mask_check_rejects_a_template_without_generation(tokenizer) -> None:
    broken = tokenizer.chat_template.replace(
        "{%- generation -%}", "{%- generation -%}{{- 'x' -}}"
    )  # the mask now also covers a token that is not assistant content
    original = tokenizer.chat_template
    try:
        tokenizer.chat_template = broken
        with pytest.raises(AssertionError, match="assistant mask is wrong"):
            check_assistant_mask(tokenizer, CONV)
    finally:
        tokenizer.chat_template = original


def test_shards_hold_every_document_and_eos(
    tokenize_artifact: pathlib.Path, curate_artifact: pathlib.Path, tokenizer
) -> None:
    index = json.loads((tokenize_artifact / "shards" / "index.json").read_text())
    assert index["dtype"] == "uint16" and index["eos_token_id"] == tokenizer.eos_token_id
    limit = micro_config("tokenize")["shard_tokens"]
    assert len(index["files"]) > 1  # micro shard_tokens forces a split
    parts = []
    for entry in index["files"]:
        path = tokenize_artifact / entry["path"]
        assert path.stat().st_size == 2 * entry["tokens"] <= 2 * limit  # no header
        ids = np.memmap(path, dtype="<u2", mode="r")
        assert ids[-1] == index["eos_token_id"]
        assert int((ids == index["eos_token_id"]).sum()) == entry["documents"]
        parts.append(np.asarray(ids))
    tokens = np.concatenate(parts)
    assert int(tokens.max()) < index["vocab_size"]
    docs = [json.loads(x)["text"] for x in (curate_artifact / "data" / "pretrain.jsonl").open()]
    # Mid-training conversations follow the documents, rendered with the chat template.
    midtrain = curate_artifact / "data" / "midtrain.jsonl"
    chats = [json.loads(x)["messages"] for x in midtrain.open()]
    assert chats, "the micro world has mid-training conversations"
    docs += [tokenizer.apply_chat_template(m, tokenize=False) for m in chats]
    assert docs[-1].startswith("<|im_start|>user\n")
    assert tokenizer.decode(tokens.tolist()) == "".join(d + "<|endoftext|>" for d in docs)
    assert int((tokens == tokenizer.convert_tokens_to_ids("<|im_start|>")).sum()) == 2 * len(chats)


def test_each_part_records_its_source_runs(
    tokenize_artifact: pathlib.Path, curate_artifact: pathlib.Path
) -> None:
    """files[i].sources: the part's runs of same-source documents in stream order, adding up
    to the part and, over all parts, to the per-source totals; each run's tokens hold its
    documents (one eos each, in the micro corpus)."""
    index = json.loads((tokenize_artifact / "shards" / "index.json").read_text())
    eos = index["eos_token_id"]
    owners, totals = [], {}
    for entry in index["files"]:
        runs = entry["sources"]
        assert sum(r["documents"] for r in runs) == entry["documents"]
        assert sum(r["tokens"] for r in runs) == entry["tokens"]
        assert all(a["source"] != b["source"] for a, b in itertools.pairwise(runs))
        ids = np.fromfile(tokenize_artifact / entry["path"], dtype="<u2")
        start = 0
        for run in runs:
            piece = ids[start : start + run["tokens"]]
            assert piece[-1] == eos and int((piece == eos).sum()) == run["documents"]
            start += run["tokens"]
            owners += [run["source"]] * run["documents"]
            total = totals.setdefault(run["source"], {"documents": 0, "tokens": 0})
            total["documents"] += run["documents"]
            total["tokens"] += run["tokens"]
    assert totals == index["sources"]
    data = curate_artifact / "data"
    rows = [json.loads(x).get("source", "world") for x in (data / "pretrain.jsonl").open()]
    chats = sum(1 for _ in (data / "midtrain.jsonl").open())
    assert owners == rows + ["midtrain"] * chats  # stream order: documents, then conversations
    assert any(len(entry["sources"]) > 1 for entry in index["files"])  # a part changes source


def test_the_shard_writer_records_runs_per_part(tmp_path: pathlib.Path) -> None:
    from stages.tokenize.shards import ShardWriter

    writer = ShardWriter(tmp_path, eos_id=0, max_tokens=6, dtype="uint16")
    writer.add([[5, 5], [6]], ["a", "a"])  # 3 + 2 tokens
    writer.add([[7], [8, 8], [9]], ["b", "a", "a"])  # 2 starts a new part: 2 + 3 + 2 tokens
    files = writer.close()
    assert [f["sources"] for f in files] == [
        [{"source": "a", "documents": 2, "tokens": 5}],
        [
            {"source": "b", "documents": 1, "tokens": 2},
            {"source": "a", "documents": 1, "tokens": 3},
        ],
        [{"source": "a", "documents": 1, "tokens": 2}],
    ]
    empty = ShardWriter(tmp_path / "empty", eos_id=0, max_tokens=6, dtype="uint16").close()
    assert empty == [{"path": "shards/part-00000.npy", "tokens": 0, "documents": 0, "sources": []}]


def test_bad_config_and_inputs(tmp_path: pathlib.Path, curate_artifact: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="vocab_size"):
        cfg = micro_config("tokenize") | {"vocab_size": 70000}
        run_stage("tokenize", cfg, {"curate": curate_artifact}, tmp_path / "a")
    with pytest.raises(KeyError, match="curate"):
        run_stage("tokenize", micro_config("tokenize"), {}, tmp_path / "b")


def payload(root: pathlib.Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_bitwise_deterministic(tmp_path: pathlib.Path, tokenize_artifact, curate_artifact) -> None:
    run_stage("tokenize", micro_config("tokenize"), {"curate": curate_artifact}, tmp_path / "a")
    assert payload(tmp_path / "a") == payload(tokenize_artifact)


def test_tokenizer_identical_in_a_fresh_process_with_more_threads(
    tmp_path: pathlib.Path, tokenize_artifact: pathlib.Path, curate_artifact: pathlib.Path
) -> None:
    """Rust hash maps are seeded per process: train again in a new process, on 2 rayon
    threads, and compare the saved bytes."""
    code = (
        "import pathlib, sys\n"
        "from tests.stages.micro import micro_config, run_stage\n"
        "run_stage('tokenize', micro_config('tokenize', threads=2), "
        "{'curate': pathlib.Path(sys.argv[1])}, pathlib.Path(sys.argv[2]))\n"
    )
    env = dict(os.environ, RAYON_NUM_THREADS="2", TOKENIZERS_PARALLELISM="true")
    subprocess.run(
        [sys.executable, "-c", code, str(curate_artifact), str(tmp_path / "p")],
        cwd=REPO,
        env=env,
        check=True,
    )
    assert payload(tmp_path / "p") == payload(tokenize_artifact)


def _in_memory_reference(curate: pathlib.Path, out: pathlib.Path, config: dict) -> None:
    """The trained-BPE path as main had it before streaming (740e659): every text read into
    lists, the BPE trained on a list, all documents encoded at once and split in memory."""
    from transformers import PreTrainedTokenizerFast

    from stages.tokenize.bpe import EOS, train_bpe, wrap

    def rows(kind: str) -> list[dict]:
        return [json.loads(line) for line in (curate / "data" / f"{kind}.jsonl").open()]

    pretrain = [r["text"] for r in rows("pretrain")]
    sft, midtrain = [r["messages"] for r in rows("sft")], [r["messages"] for r in rows("midtrain")]
    texts = pretrain + [m["content"] for ms in sft + midtrain for m in ms]
    keys = ("prompt", "chosen", "rejected")
    texts += [m["content"] for r in rows("preference") for k in keys for m in r[k]]
    bpe = train_bpe(texts, config["vocab_size"], config["min_frequency"])
    wrap(bpe, config["model_max_length"]).save_pretrained(out / "tokenizer")
    tokenizer = PreTrainedTokenizerFast.from_pretrained(out / "tokenizer", local_files_only=True)
    rendered = [tokenizer.apply_chat_template(m, tokenize=False) for m in midtrain]
    docs = [e.ids for e in bpe.encode_batch(pretrain + rendered, add_special_tokens=False)]
    eos, parts, size = tokenizer.convert_tokens_to_ids(EOS), [[]], 0
    for doc in docs:
        if parts[-1] and size + len(doc) + 1 > config["shard_tokens"]:
            parts.append([])
            size = 0
        parts[-1].append(doc)
        size += len(doc) + 1
    (out / "shards").mkdir()
    for number, part in enumerate(parts):
        ids = np.array([t for doc in part for t in (*doc, eos)], dtype="<u2")
        ids.tofile(out / "shards" / f"part-{number:05d}.npy")


def test_streaming_keeps_the_trained_bpe_bytes(
    tmp_path: pathlib.Path, tokenize_artifact: pathlib.Path, curate_artifact: pathlib.Path
) -> None:
    """Streaming the corpus changed no tokenizer or shard byte of the trained-BPE path."""
    _in_memory_reference(curate_artifact, tmp_path, micro_config("tokenize"))
    new = payload(tokenize_artifact)
    old = payload(tmp_path)
    assert set(old) == {k for k in new if not k.startswith(("order/", "shards/index.json"))}
    assert all(new[k] == old[k] for k in old)
