"""tokenize_shard stage: encode a batch of tokenize shards with a given tokenizer."""
