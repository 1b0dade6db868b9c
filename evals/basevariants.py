"""Base-model variants of the chat-formatted generative specs, and the choice between them.

A chat spec (``gsm8k:cot::tulu``, ``ifeval::tulu``, the SimpleToM and Digital Socrates specs)
renders its prompts with the model's chat template. A base model (a pretrained checkpoint, or a
foreign model without a template) is evaluated instead on the spec's *base variant*: the same
dataset, answer rule and metrics, with plain-text prompts, under an id and hash of its own:

* ``gsm8k:cot::tulu`` -> ``gsm8k::olmes``: OLMES's base-model GSM8K (``oe_eval/configs/tasks.py``
  ``gsm8k::olmes``, the task's defaults in ``oe_eval/tasks/oe_eval_tasks/gsm8k.py``): the same
  8 CoT exemplars (``STD:GSM8k``) as ``Question: <q>\\nAnswer: <cot>`` blocks joined by a blank
  line, then ``Question: <q>\\nAnswer:``; stop at ``Question:``, ``</s>``, ``<|im_end|>`` or a
  blank line; greedy, 512 new tokens; the last number of the response (OLMES's
  ``_extract_answer``, the rule of ``gsm8k:cot::tulu``) against the cleaned gold.
* every other chat spec ``task[:fmt]::regime`` -> ``task[:fmt]::regime_plain``: the prompt a
  chat template would wrap, as plain text (:func:`evals.generative.plain_context`).

:func:`choose` picks the spec a checkpoint runs: the base variant when the tokenizer has no chat
template or the checkpoint is a base kind (:data:`BASE_KINDS`), else the requested spec. The
evaluate job records the choice in the result (``variant``: requested, ran, reason).
"""

from __future__ import annotations

import dataclasses

from evals.spec import FewShotSet, TaskSpec, parse_id

# Checkpoint stages whose model is a base model (midtrain anneals pretrain's; soup averages them).
BASE_KINDS = ("pretrain", "base_model", "midtrain", "soup")
PLAIN_SUFFIX = "_plain_text"  # a base variant's prompt format: its chat format + this
# Chat specs -> the id of their base variant where it is not ``<regime>_plain``, and fields
# of that variant other than the derived ones.
NAMED = {"gsm8k:cot::tulu": "gsm8k::olmes"}
OVERRIDES = {
    "gsm8k::olmes": {
        "prompt_format": "olmes_gsm8k_cot" + PLAIN_SUFFIX,
        "fewshot": FewShotSet("tulu_gsm8k_8shot_cot.jsonl", 8, "OLMES:STD:GSM8k"),
    }
}
# Chat prompt formats that have a base variant (the rc/mc and world tasks are plain already;
# WorldValuesBench renders plain text itself when a tokenizer has no template).
CHAT_FORMATS = (
    "tulu_gsm8k_cot_chat",
    "ifeval_prompt_as_user_turn",
    "simpletom_plain",
    "simpletom_cot",
    "simpletom_remind",
    "simpletom_tom_cot",
    "digital_socrates_critique_chat",
)


def variant_id(task_id: str) -> str:
    """The id of a chat spec's base variant."""
    if task_id in NAMED:
        return NAMED[task_id]
    task, fmt, regime = parse_id(task_id)
    return f"{task}{':' + fmt if fmt else ''}::{regime}_plain"


def derive(specs: dict[str, TaskSpec]) -> dict[str, TaskSpec]:
    """The base variant of every chat spec in ``specs`` (by id), and the map requested -> base."""
    out = {}
    for spec in specs.values():
        if spec.prompt_format in CHAT_FORMATS:
            base = variant_id(spec.task_id)
            fields = {"prompt_format": spec.prompt_format + PLAIN_SUFFIX, "version": 1}
            out[base] = dataclasses.replace(spec, task_id=base, **fields | OVERRIDES.get(base, {}))
    return out


def base_of(task_id: str) -> str | None:
    """The registered base variant of a spec id (None: it has none, it is plain already)."""
    from evals.registry import BASE_VARIANTS

    return BASE_VARIANTS.get(task_id)


def choose(task_id: str, checkpoint: str, has_chat_template: bool) -> dict[str, str] | None:
    """``{"requested", "ran", "reason"}`` when a base model runs the spec's base variant
    instead of ``task_id``; None when ``task_id`` itself runs."""
    base = base_of(task_id)
    if base is None:
        return None
    if not has_chat_template:
        reason = "the model's tokenizer has no chat template"
    elif checkpoint in BASE_KINDS:
        reason = f"checkpoint {checkpoint!r} is a base model ({', '.join(BASE_KINDS)})"
    else:
        return None
    return {"requested": task_id, "ran": base, "reason": reason}
