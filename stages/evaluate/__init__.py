"""Evaluate a checkpoint with lm-eval on the tiny world's held-out eval sets."""
