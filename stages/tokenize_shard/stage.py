"""tokenize_shard stage: encode shards [first, last) of `tokenize.shards` into ``shards/``.

Shard ``i`` of ``N`` holds the documents at positions [i*T//N, (i+1)*T//N) of the stream
tokenize shards (stages/tokenize/documents.py; T counted from the curated files' lines), encoded
with the given tokenizer (its digest checked) and written as stages/tokenize/encoded.py says;
the `tokenize` job gathers all shards into its token shards.
"""

from __future__ import annotations

import itertools
import pathlib
import tempfile

from stages.common.job import Input, JobContext
from stages.common.progress import Progress
from stages.common.shardbatch import shard_batch, write_batch
from stages.tokenize.bpe import pin_threads
from stages.tokenize.documents import count_documents, documents, encode_batches, shard_range
from stages.tokenize.encoded import EncodedShardWriter
from stages.tokenize.given import TokenizerError, copy_tokenizer, load_given
from stages.tokenize.shards import shard_dtype


def run(
    config: dict, inputs: dict[str, Input], output_dir: pathlib.Path, context: JobContext
) -> dict:
    """Write shards/shard-<i>/ for every shard of the batch and batch.json; return counts."""
    if "curate" not in inputs:
        raise KeyError("tokenize_shard: needs input 'curate' (a curate artifact directory)")
    first, last, shards = shard_batch(config, "tokenize_shard")
    if config.get("tokenizer") is None:
        raise TokenizerError("tokenize_shard: needs tokenize.tokenizer (a BPE is not sharded)")
    pin_threads(config["threads"])
    with tempfile.TemporaryDirectory(prefix="reprolm-tokenize-") as scratch:
        digest = copy_tokenizer(config["tokenizer"], pathlib.Path(scratch) / "tokenizer")
        tokenizer = load_given(pathlib.Path(scratch) / "tokenizer")
    data = inputs["curate"].path / "data"
    total = count_documents(config, data)
    dtype, eos = shard_dtype(len(tokenizer)), tokenizer.eos_token_id
    counts = {"documents": 0, "tokens": 0}
    # The batch's positions are read once, in order; each shard takes its share of them.
    begin, end = shard_range(first, shards, total)[0], shard_range(last - 1, shards, total)[1]
    stream = documents(config, data, tokenizer, begin, end)
    progress = Progress("tokenize_shard", end - begin, "document")
    for shard in range(first, last):
        start, stop = shard_range(shard, shards, total)
        writer = EncodedShardWriter(output_dir / "shards" / f"shard-{shard:06d}", dtype, eos)
        share = itertools.islice(stream, stop - start)
        for batch, encoded in encode_batches(tokenizer, share):
            chars = sum(len(text) for text, _ in batch)
            writer.add(encoded, [source for _, source in batch], chars)
            progress.update(len(batch))
        record = writer.close(
            {
                "shard": shard,
                "shards": shards,
                "start": start,
                "stop": stop,
                "total": total,
                "vocab_size": len(tokenizer),
                "tokenizer_digest": digest,
            }
        )
        if record["documents"] != stop - start:
            raise ValueError(
                f"tokenize_shard: shard {shard} read {record['documents']} documents, expected "
                f"{stop - start} (positions [{start}, {stop}) of {total})"
            )
        counts["documents"] += record["documents"]
        counts["tokens"] += record["tokens"]
    progress.close()
    write_batch(output_dir, first, last, shards)
    return counts
