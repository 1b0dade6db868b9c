"""Pretraining: a small OLMo-2 model from scratch on the tokenize stage's memmap shards."""
