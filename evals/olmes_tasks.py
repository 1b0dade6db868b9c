"""The OLMES v0.1 multiple-choice tasks beyond ARC and HellaSwag, in both formats.

BoolQ, CommonsenseQA, MMLU, OpenBookQA, PIQA, Social IQa and WinoGrande, each as
``<task>:rc::olmes`` (cloze: every answer text scored after ``Answer:``) and ``<task>:mc::olmes``
(the options listed as `` A. <text>``, the letter scored). Prompts follow the OLMES reference
(allenai/OLMo-Eval ``olmo_eval/tasks/olmes_v0_1/*_std.py``, the task files of the OLMES paper;
allenai/olmes ``oe_eval/tasks/oe_eval_tasks/mmlu.py``), with ``make_cloze_prompt`` =
``<head>\\nAnswer:`` and ``make_mcq_prompt`` = ``<head>\\n A. <c1>\\n B. <c2>...\\nAnswer:``:

=============  ===============================================================================
task           head of the prompt (rc choices / mc choices)
=============  ===============================================================================
boolq          ``<passage>\\nQuestion: <question>?`` (yes, no; gold = 1 - label)
csqa           ``Question: <question>`` (the five answer texts)
mmlu           ``Question: <question>`` after ``The following are multiple choice questions
               (with answers) about <subject>.\\n\\n``; shots: the first 5 dev items of the subject
openbookqa     ``Question: <question_stem>``
piqa           ``Goal: <goal>`` (sol1, sol2)
socialiqa      ``Question: <context> <question>`` (answerA, answerB, answerC)
winogrande     rc: partial scoring, see :func:`winogrande_contexts`; mc: ``Fill in the blank:
               <sentence with _ as ___>`` (option1, option2)
=============  ===============================================================================

Few-shot layout, continuations (`` <text>`` / `` A``) and normalizations are those of the ARC
formats (:mod:`evals.formats`). Records are read in their released Hugging Face schemas; a
record that does not fit raises ``ValueError`` naming the file and line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from evals import formats
from evals.formats import SHOT_DELIMITER, Item
from evals.spec import FewShotSet, TaskSpec

ANSWER = "Answer:"
MMLU_DESCRIPTION = "The following are multiple choice questions (with answers) about {}.\n\n"
MMLU_SHOTS = 5  # MMLU's dev split: 5 items per subject, taken in file order (OLMES, Hendrycks)


def _bad(where: str, what: str, error: Exception) -> ValueError:
    """``<file>:<line>: not a valid <Task> record (fields: ...): <what went wrong>``."""
    name, _, fields = what.partition(" (")
    return ValueError(
        f"{where}: not a valid {name} record (fields: {fields.rstrip(')')}): {error!r}; "
        "see docs/evals/olmes.md"
    )


def _letter_gold(row: dict, labels: list[str], where: str, what: str) -> int:
    key = str(row["answerKey"]).strip()
    if key not in labels:
        raise ValueError(f"{where}: {what} answerKey {key!r} is none of the labels {labels}")
    return labels.index(key)


def boolq_item(row: dict, where: str = "") -> Item:
    """BoolQ: super_glue/boolq (``passage``, ``question``, ``label`` 1 = yes) or google/boolq
    (``answer`` true/false). Choices ``yes``, ``no``, so gold = 1 - label, as OLMES."""
    try:
        passage, question = str(row["passage"]), str(row["question"])
        truth = row["label"] if "label" in row else row["answer"]
        if truth not in (0, 1, True, False):
            raise ValueError(f"label/answer {truth!r} is not 0/1 or true/false")
    except (KeyError, ValueError) as error:
        raise _bad(where, "BoolQ (passage, question, label 0/1 or answer bool)", error) from None
    return Item(
        id=str(row.get("idx", "")),
        question=f"{passage}\nQuestion: {question}?",
        choices=("yes", "no"),
        gold=1 - int(truth),
        raw=row,
    )


def _lettered_item(row: dict, where: str, task: str, stem: str) -> Item:
    """An item of ``row[stem]``, ``choices{label,text}`` and a lettered ``answerKey``."""
    try:
        labels, texts = list(row["choices"]["label"]), tuple(row["choices"]["text"])
        gold = _letter_gold(row, labels, where, task)
        question = str(row[stem])
    except (KeyError, TypeError) as error:
        raise _bad(where, f"{task} ({stem}, choices{{label,text}}, answerKey)", error) from None
    return Item(str(row.get("id", "")), f"Question: {question}", texts, gold, raw=row)


def csqa_item(row: dict, where: str = "") -> Item:
    """CommonsenseQA (tau/commonsense_qa: ``question``, ``choices{label,text}``, ``answerKey``)."""
    return _lettered_item(row, where, "CommonsenseQA", "question")


def openbookqa_item(row: dict, where: str = "") -> Item:
    """OpenBookQA (allenai/openbookqa main: ``question_stem``, ``choices``, ``answerKey``)."""
    return _lettered_item(row, where, "OpenBookQA", "question_stem")


def piqa_item(row: dict, where: str = "") -> Item:
    """PIQA (ybisk/piqa: ``goal``, ``sol1``, ``sol2``, ``label`` 0/1)."""
    try:
        gold = int(row["label"])
        if gold not in (0, 1):
            raise ValueError(f"label {gold} is not 0 or 1")
        item = Item("", f"Goal: {row['goal']}", (str(row["sol1"]), str(row["sol2"])), gold, raw=row)
    except (KeyError, TypeError, ValueError) as error:
        raise _bad(where, "PIQA (goal, sol1, sol2, label 0/1)", error) from None
    return item


def socialiqa_item(row: dict, where: str = "") -> Item:
    """Social IQa (allenai/social_i_qa: ``context``, ``question``, ``answerA..C``, ``label``
    "1".."3")."""
    try:
        gold = int(row["label"]) - 1
        if gold not in (0, 1, 2):
            raise ValueError(f"label {row['label']!r} is not 1, 2 or 3")
        choices = (str(row["answerA"]), str(row["answerB"]), str(row["answerC"]))
        question = f"Question: {row['context']} {row['question']}"
    except (KeyError, TypeError, ValueError) as error:
        what = "Social IQa (context, question, answerA, answerB, answerC, label 1-3)"
        raise _bad(where, what, error) from None
    return Item("", question, choices, gold, raw=row)


def winogrande_item(row: dict, where: str = "") -> Item:
    """WinoGrande (allenai/winogrande: ``sentence`` with one ``_``, ``option1``, ``option2``,
    ``answer`` "1"/"2"); the question is the mc head (``Fill in the blank: ...___...``)."""
    try:
        sentence = str(row["sentence"])
        if sentence.count("_") != 1:
            raise ValueError(f"the sentence has {sentence.count('_')} blanks '_', not one")
        gold = int(row["answer"]) - 1
        if gold not in (0, 1):
            raise ValueError(f"answer {row['answer']!r} is not '1' or '2'")
        choices = (str(row["option1"]), str(row["option2"]))
    except (KeyError, TypeError, ValueError) as error:
        what = "WinoGrande (sentence with one _, option1, option2, answer 1/2)"
        raise _bad(where, what, error) from None
    question = "Fill in the blank: " + sentence.replace("_", "___")
    return Item(str(row.get("qID", "")), question, choices, gold, raw=row)


def mmlu_item(row: dict, where: str = "") -> Item:
    """MMLU (cais/mmlu: ``question``, ``subject``, ``choices`` list, ``answer`` index)."""
    try:
        choices = tuple(str(c) for c in row["choices"])
        gold = int(row["answer"])
        if not 0 <= gold < len(choices) or isinstance(row["choices"], str):
            raise ValueError(f"answer {gold} is no index of the {len(choices)} choices")
        subject = str(row["subject"])
        if not subject:
            raise ValueError("empty subject")
    except (KeyError, TypeError, ValueError) as error:
        what = "MMLU (question, subject, choices list, answer index)"
        raise _bad(where, what, error) from None
    return Item("", f"Question: {row['question']}", choices, gold, raw=row, group=subject)


def query(item: Item, fmt: str) -> str:
    """``make_cloze_prompt`` (rc) or ``make_mcq_prompt`` (mc) of an item's head."""
    return formats.head_query(item.question, item, fmt)


def context(item: Item, shots: list[Item], fmt: str) -> str:
    return formats.context(item, shots, fmt, query_fn=query)


def mmlu_context(item: Item, shots: dict[str, list[Item]], fmt: str) -> str:
    """The subject's description, its dev shots, the query (OLMES ``fewshot_context``)."""
    if item.group not in shots:
        raise ValueError(
            f"MMLU subject {item.group!r} has no dev items; the dataset's dev split must hold "
            f"{MMLU_SHOTS} items of every subject in its test split"
        )
    description = MMLU_DESCRIPTION.format(item.group.replace("_", " "))
    return description + context(item, shots[item.group], fmt)


def winogrande_split(row: dict) -> tuple[str, str]:
    """(sentence up to the blank, the scored rest: `` <text after the blank, stripped>``)."""
    sentence = row["sentence"]
    blank = sentence.index("_")
    return sentence[:blank], " " + sentence[blank + 1 :].strip()


def winogrande_contexts(item: Item, shots: list[Item], fmt: str) -> str | list[str]:
    """rc: one context per option (shots, then the sentence up to the blank filled with the
    option), all scored on the same rest of the sentence (OLMES' partial scoring); mc: one."""
    if fmt == "mc":
        return context(item, shots, fmt)
    prefix = "".join(
        winogrande_split(s.raw)[0] + s.choices[s.gold] + winogrande_split(s.raw)[1] + SHOT_DELIMITER
        for s in shots
    )
    head = winogrande_split(item.raw)[0]
    return [prefix + head + option for option in item.choices]


def continuations(item: Item, fmt: str) -> list[str]:
    """What is scored per choice; WinoGrande rc scores the same rest of the sentence."""
    if fmt == "rc" and "sentence" in item.raw:
        return [winogrande_split(item.raw)[1]] * len(item.choices)
    return formats.continuations(item, fmt)


@dataclass(frozen=True)
class OlmesTask:
    """One OLMES task: its data, shots, record adapter and rc primary metric."""

    name: str
    dataset: str
    split: str
    item: Callable[[dict, str], Item]
    shots: FewShotSet
    rc_primary: str
    rc_norms: tuple[str, ...] = ("raw", "per_token", "per_char", "uncond")
    sample: bool = True  # OLMES samples 1,000 of a split with more than 1,500 instances


def _pool(name: str, source: str) -> FewShotSet:
    return FewShotSet(f"olmes_{name}_fewshot.jsonl", 5, f"OLMES:{source}")


TASKS: dict[str, OlmesTask] = {
    t.name: t
    for t in (
        OlmesTask("boolq", "super_glue:boolq", "validation", boolq_item, _pool("boolq", "BoolQ"),
                  "acc_raw", ("raw", "per_token", "per_char")),
        OlmesTask("csqa", "tau/commonsense_qa", "validation", csqa_item,
                  _pool("csqa", "commonsense_qa"), "acc_uncond"),
        OlmesTask("openbookqa", "allenai/openbookqa:main", "test", openbookqa_item,
                  _pool("openbookqa", "openbookqa"), "acc_uncond"),
        OlmesTask("piqa", "ybisk/piqa", "validation", piqa_item, _pool("piqa", "piqa"),
                  "acc_per_char"),
        OlmesTask("socialiqa", "allenai/social_i_qa", "validation", socialiqa_item,
                  _pool("socialiqa", "social_i_qa"), "acc_per_char"),
        OlmesTask("winogrande", "allenai/winogrande:winogrande_xl", "validation",
                  winogrande_item, _pool("winogrande", "winogrande"), "acc_raw",
                  ("raw", "per_token", "per_char")),
        # MMLU: shots from the dataset's own dev split (file ""), every test item (OLMES sets
        # no limit for MMLU), macro average over subjects (evals.metrics).
        OlmesTask("mmlu", "cais/mmlu:all", "test", mmlu_item,
                  FewShotSet("", MMLU_SHOTS, "MMLU dev split: first 5 items per subject"),
                  "acc_per_char", sample=False),
    )
}  # fmt: skip


def renderer(task: str):
    """(record -> Item, (item, shots, fmt) -> context or per-choice contexts) of a task."""
    spec_task = TASKS[task]
    if task == "mmlu":
        return spec_task.item, mmlu_context
    if task == "winogrande":
        return spec_task.item, winogrande_contexts
    return spec_task.item, context


def _spec(task: OlmesTask, fmt: str) -> TaskSpec:
    rc = fmt == "rc"
    norms = task.rc_norms if rc else ("raw",)
    return TaskSpec(
        task_id=f"{task.name}:{fmt}::olmes",
        dataset=task.dataset,
        split=task.split,
        fewshot=task.shots,
        prompt_format=f"olmes_{task.name}_{fmt}",
        normalizations=norms,
        primary_metric=task.rc_primary if rc else "acc_raw",
        version=1,
        sample_threshold=1500 if task.sample else 10**12,
        uncond_context=ANSWER if "uncond" in norms else None,
    )


SPECS = [_spec(task, fmt) for task in TASKS.values() for fmt in ("rc", "mc")]


def task_of(prompt_format: str) -> str | None:
    """The task of an ``olmes_<task>_<fmt>`` prompt format defined here, else None."""
    for name in TASKS:
        if prompt_format in (f"olmes_{name}_rc", f"olmes_{name}_mc"):
            return name
    return None
