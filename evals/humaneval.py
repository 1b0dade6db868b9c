"""HumanEval and HumanEval+ with Tulu 3's settings (``codex_humaneval::tulu``,
``codex_humanevalplus::tulu``): chat prompts, sampled completions, execution in the sandbox
(:mod:`evals.sandbox`, never in this process), unbiased pass@k (Chen et al. 2021).

Settings, from OLMES ``oe_eval/configs/tasks.py`` (``codex_humaneval::tulu``,
``codex_humanevalplus::tulu``): chat format, ``do_sample`` with temperature 0.8 and top_p
0.95, 20 samples per problem (``repeats``), ``pass_at_ks: [10]``, primary ``pass_at_10``; the
task's defaults (prompt, assistant prefix, 512 new tokens, stop sequences) as OLMES's
``codex_humaneval`` task sets them (see docs/evals/tulu3.md (Code) for what was verified how).

A problem row (either dataset, same released schema): ``task_id``, ``prompt``,
``canonical_solution``, ``test`` (defines ``check(candidate)``), ``entry_point``. A sample's
program is ``prompt + completion + "\\n" + test + "\\ncheck(entry_point)\\n"``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evals.families import Family, RunOptions
from evals.spec import TaskSpec

USER_PREFIX = "Complete the following function:\n"
ASSISTANT_PREFIX = "Here is the completed function:\n\n```python\n"
# OLMES's stop sequences, plus our ChatML end of turn (as gsm8k adds it).
UNTIL = ("\nclass", "\nif", "\nprint", "\n#", "\n```", "\n```\n\n", "<|eot_id|>", "<|im_end|>")
MAX_GEN_TOKS = 512
TEMPERATURE = 0.8
TOP_P = 0.95
REPEATS = 20
PASS_AT_KS = (1, 10)
FIELDS = ("task_id", "prompt", "test", "entry_point")
WALL_SECONDS = {"codex_humaneval": 10.0, "codex_humanevalplus": 20.0}


def _spec(task: str, dataset: str) -> TaskSpec:
    return TaskSpec(
        task_id=f"{task}::tulu",
        dataset=dataset,
        split="test",
        fewshot=None,
        prompt_format="tulu_codex_humaneval_chat",
        normalizations=("pass_at_k_unbiased",),
        primary_metric="pass_at_10",
        version=1,
    )


SPECS = [
    _spec("codex_humaneval", "openai/openai_humaneval"),
    _spec("codex_humanevalplus", "evalplus/humanevalplus"),
]


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples with ``c`` correct: ``1 - C(n-c, k) / C(n, k)``."""
    if not 0 <= c <= n or k < 1 or k > n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n (n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def messages(problem: dict) -> list[dict[str, str]]:
    """The user turn of a problem (the assistant prefix follows the rendered prompt)."""
    return [{"role": "user", "content": USER_PREFIX + problem["prompt"]}]


def context(rendered_chat: str, problem: dict) -> str:
    """The model's input: the chat-rendered user turn, then the assistant's start of an answer
    (the prefix and the function's signature and docstring), which the model continues."""
    return rendered_chat + ASSISTANT_PREFIX + problem["prompt"]


def program(problem: dict, completion: str) -> str:
    """What runs in the sandbox for one sample."""
    return (
        problem["prompt"] + completion + "\n" + problem["test"] + "\n"
        f"check({problem['entry_point']})\n"
    )


def check_rows(path: Path, rows: list[dict]) -> None:
    for number, row in enumerate(rows, 1):
        missing = [k for k in FIELDS if not isinstance(row.get(k), str) or not row.get(k)]
        if missing:
            raise ValueError(
                f"{path}:{number}: HumanEval row needs non-empty strings {missing} "
                "(fields: task_id, prompt, canonical_solution, test, entry_point)"
            )


def execute(
    problems: Sequence[dict], completions: Sequence[Sequence[str]], task: str,
    workers: int | None = None,
) -> list[dict]:  # fmt: skip
    """Per problem: ``{task_id, n, c, samples: [{completion, status, reason}]}``."""
    from evals import sandbox

    limits = sandbox.Limits(wall_seconds=WALL_SECONDS.get(task, 10.0))
    flat = [(i, text) for i, texts in enumerate(completions) for text in texts]
    outcomes = sandbox.run_many(
        [program(problems[i], text) for i, text in flat], limits, workers=workers
    )
    rows = []
    for i, problem in enumerate(problems):
        samples = [
            {"completion": text, **outcome.to_dict()}
            for (j, text), outcome in zip(flat, outcomes, strict=True)
            if j == i
        ]
        passed = sum(s["status"] == "passed" for s in samples)
        rows.append(
            {"task_id": problem["task_id"], "n": len(samples), "c": passed, "samples": samples}
        )
    return rows


def metrics(rows: list[dict], spec: dict[str, Any] | None = None) -> dict[str, float]:
    """pass@k (mean over problems) for every k in PASS_AT_KS that every problem's n allows,
    and the share of samples per outcome. Model-free: read from the saved statuses."""
    if not rows:
        raise ValueError("no HumanEval results to score")
    n_min = min(len(r["samples"]) for r in rows)
    if n_min == 0:
        raise ValueError("a HumanEval problem has no samples")
    out = {}
    for k in PASS_AT_KS:
        if k <= n_min:
            counts = [
                (len(r["samples"]), sum(s["status"] == "passed" for s in r["samples"]))
                for r in rows
            ]
            out[f"pass_at_{k}"] = sum(pass_at_k(n, c, k) for n, c in counts) / len(rows)
    total = sum(len(r["samples"]) for r in rows)
    for status in ("timeout", "crashed"):
        out[f"share_{status}"] = (
            sum(s["status"] == status for r in rows for s in r["samples"]) / total
        )
    return out


def read_problems(data: Path) -> list[dict]:
    from evals import sources

    rows = sources.read_rows(data, "test")
    check_rows(data, rows)
    return rows


def score_file(
    spec: TaskSpec, predictions: Path, data: Path | None, out_dir: Path | None
) -> dict[str, Any]:
    """Score completions made elsewhere: JSONL ``{task_id, completion}`` per sample (the
    human-eval samples format; the completion continues the prompt) or ``{task_id,
    completions: [...]}``; tests from ``data`` (required)."""
    from evals import results, sources

    if data is None:
        raise ValueError(f"{spec.task_id}: --data is required (the problems hold the tests)")
    problems = read_problems(data)
    by_id = {p["task_id"]: p for p in problems}
    grouped: dict[str, list[str]] = {}
    for number, row in enumerate(sources.read_jsonl(predictions), 1):
        texts = row.get("completions", [row.get("completion")])
        if row.get("task_id") not in by_id or not all(isinstance(t, str) for t in texts):
            raise ValueError(
                f"{predictions}:{number}: needs a 'task_id' of {data} and a 'completion' "
                "string (or a 'completions' list of strings)"
            )
        grouped.setdefault(row["task_id"], []).extend(texts)
    chosen = [by_id[t] for t in grouped]
    rows = execute(chosen, [grouped[t] for t in grouped], spec.task)
    return results.scored_result(
        spec, spec.task, rows, predictions=predictions, data=data, data_rows=len(problems),
        out_dir=out_dir,
    )  # fmt: skip


def evaluate(
    spec: TaskSpec, model_dir: Path, data: Path, out_dir: Path, options: RunOptions
) -> dict[str, Any]:
    """Chat prompts -> 20 sampled completions each -> sandboxed tests -> pass@k."""
    from evals import generative, lmeval, sandbox
    from evals.spec import resolve

    sandbox.check_available()  # refuse before generating, not after
    problems = read_problems(data)
    resolved = resolve(spec, data, len(problems))
    indices = generative.sampled(spec, len(problems), options.limit)
    lm, tok = generative.chat_model(options, Path(model_dir), spec.task_id)
    max_length = int(lm.max_length)
    max_gen_toks, source = generative.budget(
        options.max_gen_toks, MAX_GEN_TOKS, max_length, spec.task_id
    )
    requests = []
    for doc_id, i in enumerate(indices):
        text = context(lmeval.render_chat(tok, messages(problems[i])), problems[i])
        n = len(lm.tok_encode(text))
        requests.append(
            {
                "doc_id": doc_id, "index": i, "task_id": problems[i]["task_id"], "context": text,
                "prompt_tokens": n, "truncated_tokens": max(0, n - (max_length - max_gen_toks)),
            }
        )  # fmt: skip
    lmeval.stop_at_tokens(lm, [t for t in generative.END_OF_TURN if t in UNTIL])
    texts = lmeval.generate_samples(
        lm, [{"doc_id": r["doc_id"], "context": r["context"]} for r in requests], until=UNTIL,
        max_gen_toks=max_gen_toks, temperature=TEMPERATURE, top_p=TOP_P, repeats=REPEATS,
        seed=options.seed,
    )  # fmt: skip
    rows = execute(
        [problems[i] for i in indices], [texts[r["doc_id"]] for r in requests], spec.task
    )
    for row, r in zip(rows, requests, strict=True):
        row["index"] = r["index"]
    generation = {
        "until": list(UNTIL), "max_gen_toks": max_gen_toks, "max_gen_toks_source": source,
        "do_sample": True, "temperature": TEMPERATURE, "top_p": TOP_P, "repeats": REPEATS,
    }  # fmt: skip
    wall = WALL_SECONDS[spec.task]
    harness = generative.harness_block(
        options, generation=generation, max_length=max_length,
        truncated_instances=sum(1 for r in requests if r["truncated_tokens"]),
        sandbox={"namespaces": sandbox.namespaces_available(), "wall_seconds": wall},
    )  # fmt: skip
    return generative.write_result(
        spec, spec.task, resolved, rows, harness=harness, model_dir=Path(model_dir),
        out_dir=out_dir, limit=options.limit, requests=requests,
    )  # fmt: skip


def texts(data: Path) -> list[str]:
    """Each problem's prompt (signature + docstring), what decontamination matches against."""
    return [row["prompt"] for row in read_problems(data)]


FAMILY = Family(
    kind="codex_humaneval", metrics=metrics, evaluate=evaluate, score=score_file, texts=texts
)
FAMILY_PLUS = Family(
    kind="codex_humanevalplus", metrics=metrics, evaluate=evaluate, score=score_file, texts=texts
)
