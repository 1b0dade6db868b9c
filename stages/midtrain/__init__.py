"""Mid-training: anneal the pretrain checkpoint on a mix of the tokenize artifact's sources."""
