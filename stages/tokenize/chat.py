"""Check that the chat template's assistant mask covers exactly the assistant turns."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stages.tokenize.bpe import IM_END

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast


def _runs(mask: list[int]) -> list[tuple[int, int]]:
    """[start, end) spans of consecutive 1s."""
    spans, start = [], None
    for i, bit in enumerate([*mask, 0]):
        if bit and start is None:
            start = i
        elif not bit and start is not None:
            spans.append((start, i))
            start = None
    return spans


def check_assistant_mask(tokenizer: PreTrainedTokenizerFast, messages: list[dict]) -> None:
    """Raise unless ``return_assistant_tokens_mask`` marks, per assistant turn, exactly the
    tokens of its content followed by <|im_end|>, and nothing else."""
    out = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids, mask = list(out["input_ids"]), list(out["assistant_masks"])
    want = [m["content"] + IM_END for m in messages if m["role"] == "assistant"]
    got = [tokenizer.decode(ids[a:b]) for a, b in _runs(mask)]
    if got != want:
        raise AssertionError(
            f"tokenize: chat template assistant mask is wrong: masked {got!r}, expected {want!r}; "
            "check the {% generation %} block in stages/tokenize/bpe.py"
        )
    # The masked ids must be the ids of the assistant text on its own: no token straddles
    # the boundary between header and content.
    for (a, b), text in zip(_runs(mask), want, strict=True):
        if ids[a:b] != tokenizer.encode(text, add_special_tokens=False):
            raise AssertionError(f"tokenize: assistant tokens {text!r} merge across the mask edge")
