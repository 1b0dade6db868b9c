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


def _content_then_specials(tokenizer: PreTrainedTokenizerFast, ids: list[int], text: str) -> bool:
    """``ids`` are the ids of ``text`` on its own, then special (added) tokens only."""
    own = tokenizer.encode(text, add_special_tokens=False)
    special = set(tokenizer.all_special_ids) | set(tokenizer.added_tokens_decoder)
    return ids[: len(own)] == own and all(i in special for i in ids[len(own) :])


def check_assistant_mask(
    tokenizer: PreTrainedTokenizerFast, messages: list[dict], end: str | None = IM_END
) -> None:
    """Raise unless ``return_assistant_tokens_mask`` marks, per assistant turn, exactly the
    tokens of its content followed by ``end``, and nothing else. ``end=None`` (a given
    tokenizer, whose template ends a turn its own way): the content, then special tokens only."""
    out = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids, mask = list(out["input_ids"]), list(out["assistant_masks"])
    contents = [m["content"] for m in messages if m["role"] == "assistant"]
    spans = _runs(mask)
    got = [tokenizer.decode(ids[a:b]) for a, b in spans]
    if end is None:
        want = [c + "<special tokens>" for c in contents]
        ok = len(spans) == len(contents) and all(
            _content_then_specials(tokenizer, ids[a:b], c)
            for (a, b), c in zip(spans, contents, strict=True)
        )
    else:
        want = [c + end for c in contents]
        ok = got == want
    if not ok:
        raise AssertionError(
            f"tokenize: chat template assistant mask is wrong: masked {got!r}, expected {want!r}; "
            "check the {% generation %} block of the chat template (stages/tokenize/bpe.py for "
            "the trained BPE)"
        )
    if end is None:
        return
    # The masked ids must be the ids of the assistant text on its own: no token straddles
    # the boundary between header and content.
    for (a, b), text in zip(spans, want, strict=True):
        if ids[a:b] != tokenizer.encode(text, add_special_tokens=False):
            raise AssertionError(f"tokenize: assistant tokens {text!r} merge across the mask edge")
