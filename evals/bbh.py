r"""BIG-Bench Hard (``bbh:cot::tulu``): Tulu 3's 3-shot CoT over the 27 subtasks, exact match
of the answer after "So the answer is", micro-averaged over all instances.

Settings (OLMES ``oe_eval/configs/tasks.py`` ``bbh_<subtask>:cot-v1::tulu`` and
``task_suites.py`` ``bbh:cot-v1::tulu``, whose primary metric is ``micro``): the test split,
every instance, the 3 CoT exemplars of Suzgun et al. (2022) per subtask (``cot-prompts/``,
bundled as ``bbh_cot_3shot.jsonl``), chat format with the few shots in one user turn (the
subtask description, then "Q: <input>\nA: Let's think step by step. <CoT> So the answer is X."
per exemplar, then "Q: <input>\nA: Let's think step by step."), greedy, 512 new tokens, no stop
string but the end of the assistant turn; answers are extracted with the "answer is" regex
(``answer_extract_fn: answer_regex``).

Answer rule (:func:`extract_answer`): the text after the last "the answer is" (any case), to the
end of its line, one trailing "." dropped; where the gold is an option "(X)", the first "(X)" of
that text. Exact string match with the gold ``target``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from evals.families import Family, RunOptions
from evals.metrics import group_means
from evals.spec import FewShotSet, TaskSpec

MAX_GEN_TOKS = 512
SHOTS = FewShotSet("bbh_cot_3shot.jsonl", 3, "suzgunmirac/BIG-Bench-Hard cot-prompts")
SPECS = [
    TaskSpec(
        task_id="bbh:cot::tulu",  # OLMES bbh:cot-v1::tulu
        dataset="lukaemon/bbh",  # = suzgunmirac/BIG-Bench-Hard bbh/<subtask>.json
        split="test",
        fewshot=SHOTS,
        prompt_format="bbh_cot_3shot_chat_one_turn",
        normalizations=("answer_is_regex", "option_letter"),
        primary_metric="exact_match",  # micro over all instances, as the Tulu 3 suite reports
        version=1,
        sample_threshold=10**9,  # every instance (no subtask has over 250)
    )
]
_ANSWER_IS = re.compile(r"the answer is\s*", re.IGNORECASE)
_OPTION = re.compile(r"\([A-Z]\)")


def extract_answer(response: str, gold: str) -> str | None:
    """The answer after the last "the answer is" (None: the phrase is missing)."""
    found = list(_ANSWER_IS.finditer(response))
    if not found:
        return None
    answer = response[found[-1].end() :].split("\n", 1)[0].strip()
    answer = answer[:-1].rstrip() if answer.endswith(".") else answer
    if _OPTION.fullmatch(gold):
        option = _OPTION.search(answer)
        return option.group(0) if option else answer
    return answer


def user_turn(shots: dict, question: str) -> str:
    """The subtask description, the exemplars and the question, in one user message."""
    parts = [shots["description"]]
    parts += [f"Q: {s['input']}\nA: {s['cot_answer']}" for s in shots["shots"]]
    parts.append(f"Q: {question}\nA: Let's think step by step.")
    return "\n\n".join(parts)


def chat_messages(shots: dict, question: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": user_turn(shots, question)}]


def prompts() -> dict[str, dict]:
    """The bundled CoT prompts, by subtask."""
    from evals import sources

    rows = sources.read_jsonl(sources.bundled(SHOTS.file))
    return {r["subtask"]: {**r, "shots": r["shots"][: SHOTS.n]} for r in rows}


def read_items(data: Path) -> list[dict]:
    """Rows ``{subtask, input, target}``: a folder of the released ``<subtask>.json`` files
    (``{"examples": [...]}``), or rows of any released form with a ``subtask`` field."""
    from evals import sources

    data = Path(data)
    if data.is_dir() and not sources.is_hf_disk(data):
        items = []
        for path in sorted(data.glob("*.json")):
            examples = json.loads(path.read_text(encoding="utf-8")).get("examples")
            if not isinstance(examples, list):
                raise ValueError(f"{path}: no 'examples' list (a BBH subtask file)")
            items += [{"subtask": path.stem, **e} for e in examples]
        if not items:
            raise ValueError(f"{data}: no <subtask>.json files; point at BBH's bbh/ folder")
    else:
        items = sources.read_rows(data, "test")
    check_items(data, items)
    return items


def check_items(data: Path, items: list[dict]) -> None:
    known = prompts()
    for number, row in enumerate(items, 1):
        missing = [k for k in ("subtask", "input", "target") if not isinstance(row.get(k), str)]
        if missing:
            raise ValueError(f"{data}: row {number}: no {', '.join(missing)} (BBH rows)")
        if row["subtask"] not in known:
            raise ValueError(
                f"{data}: row {number}: unknown BBH subtask {row['subtask']!r}; one of "
                f"{', '.join(sorted(known))}"
            )


def rescore(row: dict) -> dict:
    extracted = extract_answer(row["response"], row["gold"])
    return {**row, "extracted": extracted, "exact_match": float(extracted == row["gold"])}


def metrics(records: list[dict]) -> dict[str, float]:
    """``exact_match`` micro over instances (primary), its macro over subtasks, per subtask."""
    if not records:
        raise ValueError("no predictions to score")
    means = group_means((r["subtask"], r["exact_match"]) for r in records)
    out = {
        "exact_match": sum(r["exact_match"] for r in records) / len(records),
        "exact_match_macro": sum(means.values()) / len(means),
        "no_answer": sum(r["extracted"] is None for r in records) / len(records),
    }
    out.update({f"exact_match_{t}": m for t, m in means.items()})
    return out


def recompute_metrics(rows: list[dict], spec: dict[str, Any]) -> dict[str, float]:
    return metrics([rescore({k: r[k] for k in ("subtask", "response", "gold")}) for r in rows])


def score_file(
    spec: TaskSpec, predictions: Path, data: Path | None, out_dir: Path | None
) -> dict[str, Any]:
    """Score JSONL ``subtask``/``input``/``response`` rows (gold from ``data`` or ``target``)."""
    from evals import results, sources

    items = read_items(data) if data else []
    gold = {(i["subtask"], i["input"]): i["target"] for i in items}
    rows = []
    for number, pred in enumerate(sources.read_jsonl(predictions), 1):
        if not all(k in pred for k in ("subtask", "input", "response")):
            raise ValueError(f"{predictions}:{number}: needs 'subtask', 'input' and 'response'")
        target = pred.get("target", gold.get((pred["subtask"], pred["input"])))
        if target is None:
            raise ValueError(
                f"{predictions}:{number}: input not in the dataset given with --data and no "
                "'target' field"
            )
        rows.append(
            rescore(
                {
                    "subtask": pred["subtask"],
                    "input": pred["input"],
                    "response": pred["response"],
                    "gold": target,
                }
            )
        )
    return results.scored_result(
        spec, "bbh", rows, predictions=predictions, data=data, data_rows=len(items),
        out_dir=out_dir,
    )  # fmt: skip


def evaluate(
    spec: TaskSpec, model_dir: Path, data: Path, out_dir: Path, options: RunOptions
) -> dict[str, Any]:
    """3-shot CoT chat prompts -> greedy generations -> exact match; writes the result dir."""
    from evals import generative

    shots = prompts()
    return generative.evaluate_rows(
        spec, "bbh", model_dir, data, out_dir, options,
        lambda item: chat_messages(shots[item["subtask"]], item["input"]),
        lambda item, text: rescore({"subtask": item["subtask"], "input": item["input"],
                                    "response": text, "gold": item["target"]}),
        metrics, until=generative.END_OF_TURN, default_max_gen_toks=MAX_GEN_TOKS,
        read=read_items, ids=lambda item: {"subtask": item["subtask"]},
    )  # fmt: skip


def texts(data: Path) -> list[str]:
    """The input of each item (what decontamination matches training data against)."""
    return [item["input"] for item in read_items(data)]


FAMILY = Family(
    kind="bbh", metrics=recompute_metrics, evaluate=evaluate, score=score_file, texts=texts
)
