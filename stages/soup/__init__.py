"""Model soup: the weighted average of several checkpoints' weights."""
