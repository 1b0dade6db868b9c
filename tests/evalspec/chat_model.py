"""The tiny random model of conftest.py with ChatML added, as the tiny recipe's checkpoints have.

A copy of ``tiny_model`` with ``<|im_start|>``/``<|im_end|>`` as special tokens, the embeddings
resized for them, a ChatML chat template, and a short context (``max_position_embeddings``), so
that 8-shot GSM8K prompts must be truncated, as on the tiny recipe's models.
"""

from __future__ import annotations

import pathlib

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_chat_model(
    base: pathlib.Path, dest: pathlib.Path, max_positions: int = 256
) -> pathlib.Path:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base)
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tok.chat_template = CHATML
    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(base)
    model.resize_token_embeddings(len(tok), mean_resizing=False)
    model.config.max_position_embeddings = max_positions
    model.save_pretrained(dest)
    tok.save_pretrained(dest)
    return dest
