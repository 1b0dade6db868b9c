"""tokenize: byte-level BPE tokenizer with a ChatML template, and uint16 token shards."""
