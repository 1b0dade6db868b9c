"""world: a deterministic synthetic "tiny world" (pretrain, SFT, preference, RLVR, eval sets)."""
