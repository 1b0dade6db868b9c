"""HellaSwag in the OLMES formats: items, preprocessing, prompts and the two specs.

Follows the OLMES reference (allenai/OLMo-Eval ``olmes_v0_1/hellaswag.py``, the catwalk task the
OLMES paper ran): query = ``preprocess(activity_label + ": " + ctx_a + " " + ctx_b.capitalize())``,
choices = the four endings, each preprocessed.

``rc``  the query, each ending scored as `` <ending>``.
``mc``  ``<label>: <ctx>\\nChoose the best continuation:\\n A. <e1>\\n...\\nAnswer:`` with the
        whole prompt preprocessed (as OLMES does), scored on `` A`` .. `` D``.

Few-shot layout and everything else are those of the ARC formats (:mod:`formats`).
"""

from __future__ import annotations

import re

from evals import formats
from evals.formats import LETTERS, Item
from evals.spec import FewShotSet, TaskSpec

SHOTS = FewShotSet("olmes_hellaswag_fewshot.jsonl", 5, "OLMES:hellaswag")
MC_CUE = "Choose the best continuation:\n"


def preprocess(text: str) -> str:
    """OLMES' HellaSwag clean-up of WikiHow artifacts.

    lm-eval's version replaces `` [title]`` by ``". "``, which doubles the full stop after a
    sentence (``"plans. [title]"`` -> ``"plans.. "``); OLMES fixed that with an optional ``.``
    in the pattern, kept here. Then every ``[...]`` tag goes and double spaces collapse once.
    """
    text = text.strip()
    text = re.sub(r"\.? \[title\]", ". ", text)
    text = re.sub(r"\[.*?\]", "", text)
    return text.replace("  ", " ")


def raw_query(row: dict) -> str:
    return f"{row['activity_label']}: {row['ctx_a']} {row['ctx_b'].capitalize()}"


def item(row: dict, where: str = "") -> Item:
    """A HellaSwag record (``activity_label``, ``ctx_a``, ``ctx_b``, ``endings``, ``label``);
    the item's question is the preprocessed rc query, its choices the preprocessed endings."""
    try:
        endings = [str(e) for e in row["endings"]]
        gold = int(row["label"])
        question = preprocess(raw_query(row))
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ValueError(
            f"{where}: not a HellaSwag record with activity_label, ctx_a, ctx_b, endings and "
            f"an integer label ({error!r})"
        ) from None
    if not 0 <= gold < len(endings):
        raise ValueError(f"{where}: label {gold} is not an index of the {len(endings)} endings")
    ident = str(row.get("ind", row.get("id", "")))
    return Item(
        id=ident,
        question=question,
        choices=tuple(preprocess(e) for e in endings),
        gold=gold,
        raw=row,
    )


def query(it: Item, fmt: str) -> str:
    """The prompt of one HellaSwag item without its answer."""
    if fmt == "rc":
        return it.question
    if fmt == "mc":
        # OLMES builds the mc prompt from the raw fields, then preprocesses it as a whole.
        row = it.raw
        lines = "\n".join(f" {LETTERS[i]}. {e}" for i, e in enumerate(row["endings"]))
        return preprocess(f"{raw_query(row)}\n{MC_CUE}{lines}\nAnswer:")
    raise ValueError(f"unknown multiple-choice format {fmt!r} (rc or mc)")


def context(it: Item, shots: list[Item], fmt: str) -> str:
    return formats.context(it, shots, fmt, query_fn=query)


def _spec(fmt: str) -> TaskSpec:
    rc = fmt == "rc"
    return TaskSpec(
        task_id=f"hellaswag:{fmt}::olmes",
        dataset="Rowan/hellaswag",
        split="validation",  # 10,042 items: OLMES samples 1,000 with seed 1234
        fewshot=SHOTS,
        prompt_format=f"olmes_hellaswag_{fmt}",
        normalizations=("raw", "per_token", "per_char", "uncond") if rc else ("raw",),
        primary_metric="acc_per_char" if rc else "acc_raw",
        version=1,
        uncond_context="Answer:" if rc else None,  # OLMES keeps the default PMI context for rc
    )


SPECS = [_spec("rc"), _spec("mc")]
