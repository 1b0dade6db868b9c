"""Release the final checkpoint: HF model, model card, eval table, lineage."""
