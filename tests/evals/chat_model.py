"""The session's tiny random OLMo 2 with ChatML added, as the tiny recipe's checkpoints have.

``with_chatml``: a plain copy whose tokenizer gets the ChatML template (the markers stay ordinary
text). ``build_chat_model``: ``<|im_start|>``/``<|im_end|>`` as special tokens, the embeddings
resized for them, and a short context (``max_position_embeddings``), so that 8-shot GSM8K
prompts must be truncated, as on the tiny recipe's models.
"""

from __future__ import annotations

import pathlib
import shutil

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def with_chatml(model: pathlib.Path, dest: pathlib.Path) -> pathlib.Path:
    """A copy of ``model`` whose tokenizer has the ChatML template."""
    from transformers import AutoTokenizer

    shutil.copytree(model, dest)
    tokenizer = AutoTokenizer.from_pretrained(dest)
    tokenizer.chat_template = CHATML
    tokenizer.save_pretrained(dest)
    return dest


def build_chat_model(
    base: pathlib.Path, dest: pathlib.Path, max_positions: int = 256
) -> pathlib.Path:
    """ChatML markers as special tokens, resized embeddings, a ``max_positions`` context."""
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
