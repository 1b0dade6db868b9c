"""The session's tiny random OLMo 2 with a ChatML chat template added (the tiny recipe's SFT
models carry one), for the task families that render chat prompts."""

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
