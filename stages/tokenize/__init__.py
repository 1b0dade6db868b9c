"""tokenize: a trained byte-level BPE (ChatML) or a given HF tokenizer, uint16/uint32 token shards
and the data-order file."""
