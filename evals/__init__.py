"""Evaluation to the OLMES standard: versioned task specs, prompt formats, metrics, scoring.

Pure Python (no torch, transformers or lm_eval at import). ``evals.multiple_choice`` runs a
spec through lm-evaluation-harness; everything else works on saved predictions alone.
"""
