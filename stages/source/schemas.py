"""Source rows (Tulu 3 / open-instruct schemas) to the internal training rows curate reads.

pretrain ``{id, text, source}``; sft ``{id, messages, source}``; preference ``{id, prompt,
chosen, rejected, source}`` (message lists; chosen / rejected are the final assistant turn);
rlvr ``{id, prompt, verifier, ground_truth, source}`` (``verifier`` a name of
evals/verifiers.py's registry, ``ground_truth`` the string it expects). docs/stages/source.md
describes each mapping.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

KINDS = ("pretrain", "sft", "preference", "rlvr")
ROLES = ("system", "user", "assistant")
# open-instruct's `dataset` column (lower case) -> the registry verifier for it: gsm8k rows get
# Tulu 3's rule (open-instruct's GSM8K verifier, = gsm8k:cot::tulu); a source's
# `dataset_verifiers` replaces entries (e.g. {gsm8k: numeric_answer}, the "answer is" rule).
DATASET_VERIFIERS = {"gsm8k": "gsm8k_tulu", "math": "numeric_answer", "ifeval": "ifeval"}


class RowError(ValueError):
    """A source row cannot become a training row (the message is the Reject reason)."""


def to_internal(kind: str, row: dict, source: Mapping[str, Any], position: int) -> dict:
    """The internal training row of ``row`` (``source``: the source's config; ``position``:
    the row's position, its id when it has none)."""
    if kind not in KINDS:
        raise ValueError(f"unknown source kind {kind!r}; kinds: {', '.join(KINDS)}")
    name = source["name"]
    raw_id = row.get("id")
    ident = raw_id if isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool) else position
    body = CONVERTERS[kind](row, source)
    return {"id": f"{name}/{ident}", **body, "source": name}


def _pretrain(row: dict, source: Mapping[str, Any]) -> dict:
    key = source.get("text_key") or "text"
    if key not in row:
        raise RowError(f"no text field {key!r} (fields: {', '.join(sorted(map(str, row)))})")
    text = row[key]
    if not isinstance(text, str):
        raise RowError(f"text field {key!r} is {type(text).__name__}, not a string")
    if not text.strip():
        raise RowError(f"text field {key!r} is empty")
    return {"text": text}


def messages(value: Any, key: str) -> list[dict]:
    """A conversation as ``[{role, content}]`` (other message fields dropped), checked."""
    if not isinstance(value, list) or not value:
        raise RowError(f"{key!r} is not a non-empty list of messages")
    turns = []
    for i, message in enumerate(value):
        if not isinstance(message, Mapping):
            raise RowError(f"{key}[{i}] is {type(message).__name__}, not a message object")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise RowError(f"{key}[{i}].role is {role!r}; expected one of {', '.join(ROLES)}")
        if not isinstance(content, str):
            raise RowError(f"{key}[{i}].content is {type(content).__name__}, not a string")
        if not content.strip():
            raise RowError(f"{key}[{i}].content is empty")
        turns.append({"role": role, "content": content})
    return turns


def _field(row: dict, key: str) -> Any:
    if key not in row:
        raise RowError(f"no field {key!r} (fields: {', '.join(sorted(map(str, row)))})")
    return row[key]


def _sft(row: dict, source: Mapping[str, Any]) -> dict:
    key = source.get("messages_key") or "messages"
    turns = messages(_field(row, key), key)
    if not any(turn["role"] == "assistant" for turn in turns):
        raise RowError(f"{key!r} has no assistant turn to train on")
    return {"messages": turns}


def _preference(row: dict, source: Mapping[str, Any]) -> dict:
    del source
    chosen = messages(_field(row, "chosen"), "chosen")
    rejected = messages(_field(row, "rejected"), "rejected")
    if isinstance(row.get("prompt"), list):  # already internal: prompt turns + final answers
        prompt = messages(row["prompt"], "prompt")
        return {"prompt": prompt, "chosen": chosen, "rejected": rejected}
    for key, turns in (("chosen", chosen), ("rejected", rejected)):
        if turns[-1]["role"] != "assistant":
            raise RowError(f"{key!r} does not end in an assistant turn")
    shared = chosen[:-1]
    if shared != rejected[:-1]:
        raise RowError("'chosen' and 'rejected' do not share their prompt turns")
    if not shared:  # answers only: the prompt is the `prompt` string
        text = row.get("prompt")
        if not isinstance(text, str) or not text.strip():
            raise RowError("no prompt: no turns before the answers and no 'prompt' string")
        shared = [{"role": "user", "content": text}]
    return {"prompt": shared, "chosen": chosen[-1:], "rejected": rejected[-1:]}


def _rlvr(row: dict, source: Mapping[str, Any]) -> dict:
    key = source.get("messages_key") or "messages"
    prompt = messages(_field(row, key), key)
    if prompt[-1]["role"] == "assistant":
        raise RowError(f"{key!r} ends in an assistant turn; an RLVR prompt ends before the answer")
    verifier = _verifier_name(row, source)
    truth = GROUND_TRUTHS.get(verifier, _plain_truth)(_field(row, "ground_truth"))
    return {"prompt": prompt, "verifier": verifier, "ground_truth": truth}


def _verifier_name(row: dict, source: Mapping[str, Any]) -> str:
    """The source config's ``verifier``, else the row's, else the one for its ``dataset``.

    Whether the name is registered (and, for ifeval, whether its instruction ids have checkers)
    is checked where the verifiers are code: the plan checks a source's `verifier`
    (reprolm/sources.py) and the rlvr stage every row's, naming data/rlvr.jsonl:line. Curate
    imports no evaluation code, so editing a metric never reruns curation (and all after it).
    """
    name = source.get("verifier") or row.get("verifier")
    if not name:
        mapping = dataset_verifiers(source)
        dataset = row.get("dataset")
        name = mapping.get(str(dataset).lower()) if isinstance(dataset, str) else None
        if name is None:
            raise RowError(
                f"no verifier for dataset {dataset!r} (mapped: {', '.join(mapping)});"
                " set the source's verifier or dataset_verifiers"
            )
    if not isinstance(name, str):
        raise RowError(f"verifier is {type(name).__name__}; expected a verifier name")
    return name


def dataset_verifiers(source: Mapping[str, Any]) -> dict[str, str]:
    """DATASET_VERIFIERS with the source's ``dataset_verifiers`` entries (keys lower-cased)."""
    own = source.get("dataset_verifiers") or {}
    return {**DATASET_VERIFIERS, **{str(k).lower(): v for k, v in own.items()}}


def _single(value: Any) -> Any:
    """open-instruct allows a one-element list of ground truths."""
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    return value


def _plain_truth(value: Any) -> str:
    value = _single(value)
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise RowError(f"ground_truth is {type(value).__name__}; expected a string or number")
    text = str(value)
    if not text.strip():
        raise RowError("ground_truth is empty")
    return text


def _numeric_truth(value: Any) -> str:
    """A number (GSM8K's ``#### N`` solutions give their gold number), kept as written: the
    numeric verifiers (numeric_answer, gsm8k_tulu) normalize it when they score."""
    text = _plain_truth(value)
    if "####" in text:
        text = text.rsplit("####", 1)[1]
    number = text.strip()
    try:
        float(number.replace(",", "").rstrip("."))
    except ValueError:
        raise RowError(
            f"ground_truth {text[:60]!r} is not a number; numeric verifiers (numeric_answer, "
            "gsm8k_tulu) cannot verify it"
        ) from None
    return number


def _ifeval_truth(value: Any) -> str:
    """JSON ``{"instruction_id_list", "kwargs"}``, from that form or open-instruct's
    ``[{"instruction_id": [...], "kwargs": [...]}]`` (the rlvr stage checks the ids have
    checkers)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise RowError(f"ifeval ground_truth is not JSON: {error.msg}") from None
    value = _single(value)
    if not isinstance(value, Mapping):
        raise RowError(f"ifeval ground_truth is {type(value).__name__}, not an object")
    if "func_name" in value:
        raise RowError(
            f"ifeval ground_truth names open-instruct function {value['func_name']!r}; only "
            "IFEval instruction ids (instruction_id_list + kwargs) have checkers here"
        )
    ids = value.get("instruction_id_list", value.get("instruction_id"))
    kwargs = value.get("kwargs")
    if not isinstance(ids, list) or not isinstance(kwargs, list) or len(ids) != len(kwargs):
        raise RowError("ifeval ground_truth needs instruction_id_list and kwargs of one length")
    kwargs = [k or {} for k in kwargs]
    return json.dumps({"instruction_id_list": ids, "kwargs": kwargs}, sort_keys=True)


CONVERTERS = {"pretrain": _pretrain, "sft": _sft, "preference": _preference, "rlvr": _rlvr}
GROUND_TRUTHS = {
    "numeric_answer": _numeric_truth,
    "gsm8k_tulu": _numeric_truth,
    "ifeval": _ifeval_truth,
}
