"""evaldata stage: import the evaluation specs' datasets."""
