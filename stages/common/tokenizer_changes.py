"""Make a foreign base model's tokenizer SFT-ready the way Tulu 3 does (open-instruct).

A released base model (Llama 2/3 style) may lack what SFT needs: a chat template that marks the
assistant tokens, and a pad token distinct from eos. ``adapt_tokenizer`` adds them as
open-instruct's ``get_tokenizer_tulu_v2_2`` does (a ``<pad>`` special token when pad is missing or
equals eos; the ``tulu`` template), and ``resize_embeddings`` grows the embedding matrices as its
``finetune.py`` does (only when the tokenizer outgrew them, to a multiple of 8). Deviations: the
template wraps each assistant turn in ``{% generation %}`` (renders nothing; TRL's assistant-only
loss needs it) and new rows are the mean of the old ones (exact, no random draw). A tokenizer that
already has a ``{% generation %}`` template and a pad token of its own is left untouched.
"""

from __future__ import annotations

import hashlib
from typing import Any

TULU_PAD_TOKEN = "<pad>"
TEMPLATE_NAME = "tulu"
# open-instruct's "tulu" template (dataset_transformation.CHAT_TEMPLATES), with each assistant
# turn's content and eos inside {% generation %} so TRL can mask everything else.
TULU_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}"
    "{{ '<|system|>\n' + message['content'] + '\n' }}"
    "{% elif message['role'] == 'user' %}"
    "{{ '<|user|>\n' + message['content'] + '\n' }}"
    "{% elif message['role'] == 'assistant' %}"
    "{{ '<|assistant|>\n' }}"
    "{% generation %}{{ message['content'] + eos_token }}{% endgeneration %}"
    "{% if not loop.last %}{{ '\n' }}{% endif %}"
    "{% endif %}"
    "{% if loop.last and add_generation_prompt %}"
    "{{ '<|assistant|>\n' }}"
    "{% endif %}"
    "{% endfor %}"
)
PAD_MULTIPLE = 8  # finetune.py: resize_token_embeddings(len(tokenizer), pad_to_multiple_of=8)
RESIZE_RULE = (
    "rows = len(tokenizer) rounded up to a multiple of 8, only if len(tokenizer) > rows; "
    "new input and output rows = mean of the old rows"
)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def has_generation_block(tokenizer: Any) -> bool:
    """Whether the chat template marks assistant tokens (``{% generation %}``, any spacing), as
    tokenize's check (``stages.tokenize.given``; not imported: the training stages' code
    fingerprint would then follow the tokenize package)."""
    squeezed = (_template_text(tokenizer) or "").replace(" ", "").replace("-", "")
    return "{%generation%}" in squeezed


def _template_text(tokenizer: Any) -> str | None:
    template = tokenizer.chat_template
    if isinstance(template, dict):
        return "".join(template[k] for k in sorted(template))
    return template


def adapt_tokenizer(tokenizer: Any) -> dict[str, Any]:
    """Add Tulu's pad token and chat template where missing; return what changed ({} if none).

    Pad is missing when it is unset or equals eos (``load_tokenizer`` falls back to eos in
    memory); Tulu adds ``<pad>`` then. The template is replaced when it has no generation block.
    """
    changes: dict[str, Any] = {}
    before = len(tokenizer)
    if tokenizer.pad_token is None or tokenizer.pad_token == tokenizer.eos_token:
        tokenizer.add_special_tokens({"pad_token": TULU_PAD_TOKEN})
        changes["pad_token"] = {"token": TULU_PAD_TOKEN, "id": tokenizer.pad_token_id}
    if not has_generation_block(tokenizer):
        old = _template_text(tokenizer)
        tokenizer.chat_template = TULU_TEMPLATE
        changes["chat_template"] = {
            "name": TEMPLATE_NAME,
            "sha256": sha256(TULU_TEMPLATE),
            "replaced_sha256": sha256(old) if old else None,
            "end_of_turn": tokenizer.eos_token,
        }
    if changes:
        added = tokenizer.get_added_vocab()
        changes["added_tokens"] = {t: i for t, i in sorted(added.items()) if i >= before}
        changes["tokenizer_size"] = {"before": before, "after": len(tokenizer)}
    return changes


def _mean_fill(weight: Any, old_rows: int) -> None:
    import torch

    with torch.no_grad():
        weight[old_rows:] = weight[:old_rows].mean(dim=0, keepdim=True)


class PartitionedModelError(RuntimeError):
    """The embeddings were to be resized on a model DeepSpeed ZeRO-3 had already partitioned."""


def resize_embeddings(model: Any, tokenizer: Any, changes: dict[str, Any]) -> None:
    """Grow the embeddings when the tokenizer outgrew them; record the sizes in ``changes``.

    The model must be whole: under ZeRO-3 a partitioned parameter (DeepSpeed marks it with
    ``ds_id``) holds an empty local tensor, so its row count and mean would be wrong. The
    post-training stages resize right after loading, before any TrainingArguments exist (which
    would make ``from_pretrained`` partition at load time) and before the trainer hands the model
    to DeepSpeed; a partitioned model is refused rather than resized wrongly.
    """
    if not changes:
        return
    if any(hasattr(p, "ds_id") for p in model.parameters()):
        raise PartitionedModelError(
            "resize_embeddings: the model's parameters are already partitioned by DeepSpeed "
            "ZeRO-3; adapt the tokenizer and resize right after loading the model, before any "
            "TrainingArguments with a DeepSpeed config are created (stages.common.posttraining"
            ".prepare)"
        )
    rows = model.get_input_embeddings().weight.shape[0]
    resized = len(tokenizer) > rows
    if resized:
        model.resize_token_embeddings(
            len(tokenizer), pad_to_multiple_of=PAD_MULTIPLE, mean_resizing=False
        )
        _mean_fill(model.get_input_embeddings().weight, rows)
        output = model.get_output_embeddings()
        if output is not None and output.weight is not model.get_input_embeddings().weight:
            _mean_fill(output.weight, rows)
    changes["embeddings"] = {
        "rows_before": rows,
        "rows_after": model.get_input_embeddings().weight.shape[0],
        "resized": resized,
        "rule": RESIZE_RULE,
    }


def summary_fields(changes: dict[str, Any]) -> dict[str, Any]:
    """Flat summary fields of the changes (none when nothing changed, as for the project's own)."""
    if not changes:
        return {}
    template = changes.get("chat_template")
    return {
        "tokenizer_chat_template": template["name"] if template else None,
        "tokenizer_added_tokens": len(changes["added_tokens"]),
        "embedding_rows_before": changes["embeddings"]["rows_before"],
        "embedding_rows_after": changes["embeddings"]["rows_after"],
    }
