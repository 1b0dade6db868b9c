"""Generative specs on a model: chat-rendered prompts, greedy generation through lm-eval.

The one generative runner, shared by the GSM8K, IFEval, SimpleToM and Digital Socrates families
(Complement Coercion uses its model loading and harness block). :func:`run` takes a family's
chat messages and stop strings, renders them with the model's chat template
(:func:`lmeval.render_chat`), decides the generation budget, records left truncation (lm-eval
keeps the *last* ``max_length - max_gen_toks`` prompt tokens) and calls :func:`lmeval.generate`;
families that generate themselves use :func:`load`, :func:`chat_context`,
:func:`capped_budget`. :func:`write_result` writes every generative result, with the generation
settings in the spec hash. A family whose rows each give one prompt and one scored record runs
through :func:`evaluate_rows` (read and check the data: :func:`start_rows`; generate and score:
:func:`generate_rows`; write).

A model without a chat template is refused by a chat spec rather than given a plain-text
fallback: the spec id pins the chat format (``gsm8k:cot::tulu`` is Tulu 3's chat prompt), so a
plain prompt would be a different task under the same id and hash. The plain-text formats are
specs of their own, the *base variants* (:mod:`evals.basevariants`, prompt formats ending in
:data:`PLAIN_SUFFIX`): :func:`run` takes their prompts as strings, used as they are, and
:func:`context` renders a system + user prompt either way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evals import lmeval, sources
from evals.basevariants import PLAIN_SUFFIX  # a base variant's format: chat format + this
from evals.families import RunOptions
from evals.spec import TaskSpec
from reprolm.canonical import canonical_json

REQUESTS = "requests.jsonl"
END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<|end|>")  # ChatML, Llama 3, Phi: stop tokens


def is_plain(spec: TaskSpec) -> bool:
    """Whether a spec's prompts are plain text (a base variant) rather than chat formatted."""
    return spec.prompt_format.endswith(PLAIN_SUFFIX)


def chat_format(spec: TaskSpec) -> str:
    """The chat prompt format a spec renders (a base variant: the one it is derived from)."""
    return spec.prompt_format.removesuffix(PLAIN_SUFFIX)


def plain_context(system: str | None, user: str) -> str:
    """A system + user prompt as plain text: the system line, a blank line, the user text, a
    blank line (where a base model continues)."""
    return (f"{system}\n\n" if system else "") + f"{user}\n\n"


@dataclass(frozen=True)
class Generation:
    """What a generative run records about generation (part of the resolved spec)."""

    until: tuple[str, ...]
    max_gen_toks: int
    max_gen_toks_source: str  # "options" | "spec default" | "spec default, clamped to context"

    def to_dict(self) -> dict[str, Any]:
        return {
            "until": list(self.until),
            "max_gen_toks": self.max_gen_toks,
            "max_gen_toks_source": self.max_gen_toks_source,
            "do_sample": False,
        }


def budget(requested: int | None, default: int, max_length: int, task_id: str) -> tuple[int, str]:
    """(max_gen_toks, where it came from). A default that leaves no room for a prompt in the
    model's context is clamped to half of it; an explicit value that does is refused."""
    if requested is not None:
        if requested >= max_length:
            raise ValueError(
                f"{task_id}: max_gen_toks {requested} leaves no room for the prompt in the "
                f"model's context of {max_length} tokens; use a value below {max_length}"
            )
        return requested, "options"
    if default >= max_length:
        return max_length // 2, "spec default, clamped to context"
    return default, "spec default"


def chat_model(options: RunOptions, model_dir: Path, task_id: str) -> tuple[Any, Any]:
    """(lm-eval model, its tokenizer); a tokenizer without a chat template is refused."""
    lm = options.lm or lmeval.load_model(
        model_dir, options.batch_size, backend=options.backend, device=options.device
    )
    tok = lmeval.tokenizer_of(lm)
    if not getattr(tok, "chat_template", None):
        raise ValueError(
            f"{task_id}: {model_dir} has no chat template (tokenizer_config.json "
            "'chat_template' or chat_template.jinja); this spec's prompts are chat formatted, "
            "so evaluate a model with one (e.g. a post-trained checkpoint) or add the template"
        )
    return lm, tok


def run(
    spec: TaskSpec,
    model_dir: Path,
    out_dir: Path,
    options: RunOptions,
    messages: Sequence[list[dict[str, str]] | str],
    *,
    until: Sequence[str],
    default_max_gen_toks: int,
    extra: Callable[[int], dict[str, Any]] = lambda i: {},
) -> tuple[list[dict], list[str], dict[str, Any]]:
    """Render, write ``requests.jsonl``, generate. Returns (requests, generations, harness).

    ``messages``: per instance a chat conversation (rendered with the model's chat template) or
    a plain-text prompt (a base variant's: used as it is, no template needed).

    ``extra(i)`` adds fields (index, id) to request ``i``; ``harness`` is the result's harness
    block (engine, backend, batch size, seed, generation budget, context, truncation, versions).
    """
    if all(isinstance(m, str) for m in messages):
        lm = load(model_dir, options)
        tok = None
    else:
        lm, tok = chat_model(options, model_dir, spec.task_id)
    max_length = int(lm.max_length)
    max_gen_toks, source = budget(
        options.max_gen_toks, default_max_gen_toks, max_length, spec.task_id
    )
    generation = Generation(tuple(until), max_gen_toks, source)
    keep = max_length - max_gen_toks
    requests = []
    for doc_id, conversation in enumerate(messages):
        context = (
            conversation if isinstance(conversation, str) else lmeval.render_chat(tok, conversation)
        )
        n = len(lm.tok_encode(context))
        requests.append(
            {
                "doc_id": doc_id,
                **extra(doc_id),
                "context": context,
                "prompt_tokens": n,
                "truncated_tokens": max(0, n - keep),  # dropped from the left by lm-eval
            }
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / REQUESTS).write_text(
        "".join(canonical_json(r) + "\n" for r in requests), encoding="utf-8"
    )
    lmeval.stop_at_tokens(lm, [t for t in END_OF_TURN if t in until])
    texts = lmeval.generate(
        lm,
        [{"doc_id": r["doc_id"], "context": r["context"]} for r in requests],
        until=until,
        max_gen_toks=max_gen_toks,
        seed=options.seed,
    )
    harness = harness_block(
        options,
        generation=generation.to_dict(),
        max_length=max_length,
        truncated_instances=sum(1 for r in requests if r["truncated_tokens"]),
    )
    return requests, [texts[r["doc_id"]] for r in requests], harness


def load(model_dir: Path, options: RunOptions) -> Any:
    """The options' already loaded model, else the model dir loaded through lm-eval."""
    if options.lm is not None:
        return options.lm
    return lmeval.load_model(
        model_dir, options.batch_size, backend=options.backend, device=options.device
    )


def chat_context(lm: Any, system: str | None, user: str) -> str:
    """The prompt string under the tokenizer's chat template (a clear error when it has none)."""
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": user})
    return lmeval.render_chat(lmeval.tokenizer_of(lm), messages)


def context(lm: Any, spec: TaskSpec, system: str | None, user: str) -> str:
    """The prompt of a system + user spec: plain text for a base variant, else chat."""
    return plain_context(system, user) if is_plain(spec) else chat_context(lm, system, user)


def capped_budget(lm: Any, wanted: int, requested: bool) -> tuple[Generation, int]:
    """(generation settings, max_length) with no stop string: the wanted length capped at half
    the model's context so lm-eval keeps room for the prompt (each prediction row records its
    prompt length so a truncation is visible). ``requested``: the length came from options."""
    max_length = int(lm.max_length)
    max_gen_toks = max(1, min(wanted, max_length // 2))
    source = "options" if requested else "spec default"
    if max_gen_toks != wanted:
        source += ", clamped to context"
    return Generation((), max_gen_toks, source), max_length


def prompt_tokens(lm: Any, context: str) -> int:
    """Tokens of a rendered prompt as lm-eval encodes it."""
    return len(lm.tok_encode(context))


def harness_block(options: RunOptions, **extra: Any) -> dict[str, Any]:
    """The result's ``harness`` block: engine, backend, batch size, seed, versions, ``extra``."""
    return {
        "engine": "lm_eval.simple_evaluate",
        "backend": options.backend,
        "batch_size": options.batch_size,
        "seed": options.seed,
        "versions": lmeval.versions(),
        **extra,
    }


def write_result(
    spec: TaskSpec,
    kind: str,
    resolved: dict[str, Any],
    rows: list[dict],
    *,
    harness: dict[str, Any],
    model_dir: Path,
    out_dir: Path,
    limit: int | None,
    metrics: dict[str, float] | None = None,
    requests: list[dict] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Write a model run's result directory (``requests.jsonl`` when given, predictions,
    ``result.json``); return it loaded. ``metrics`` default to the family's from ``rows``.

    The harness block's generation settings join the resolved spec, so they are covered by its
    hash: two numbers with one hash were generated with the same budget and stop strings.
    """
    from evals import results
    from evals.families import family

    if "generation" in harness:
        resolved = {**resolved, "generation": harness["generation"]}
    out_dir.mkdir(parents=True, exist_ok=True)
    if requests is not None:
        (out_dir / REQUESTS).write_text(
            "".join(canonical_json(r) + "\n" for r in requests), encoding="utf-8"
        )
    if metrics is None:
        metrics = family(kind).metrics(rows, resolved)
    files = {"requests": {"path": REQUESTS, "blake3": sources.digest(out_dir / REQUESTS)}}
    result = results.envelope(
        spec, kind, resolved, metrics, instances=len(rows), limit=limit,
        model=lmeval.model_block(model_dir), harness=harness, files=files, **fields,
    )  # fmt: skip
    results.write_result(out_dir, result, rows)
    return results.load_result(out_dir)


def write(
    spec: TaskSpec,
    kind: str,
    resolved: dict[str, Any],
    harness: dict[str, Any],
    model_dir: Path,
    out_dir: Path,
    limit: int | None,
    rows: list[dict],
    metrics: dict[str, float],
) -> dict[str, Any]:
    """:func:`write_result` for a :func:`run` (its requests are written already)."""
    return write_result(
        spec, kind, resolved, rows, harness=harness, model_dir=model_dir, out_dir=out_dir,
        limit=limit, metrics=metrics,
    )  # fmt: skip


def sampled(spec: TaskSpec, n_rows: int, limit: int | None) -> list[int]:
    """The spec's instance indices, the first ``limit`` of them when given."""
    indices = sources.sample_indices(
        n_rows, threshold=spec.sample_threshold, size=spec.sample_size, seed=spec.sample_seed
    )
    return indices if limit is None else indices[:limit]


def check_each(check_row: Callable[[dict, str], None]) -> Callable[[Path, list[dict]], None]:
    """A whole data file's check from one row's (``check_row(row, "<path>:<line>")``)."""

    def check(path: Path, rows: list[dict]) -> None:
        for number, row in enumerate(rows, 1):
            check_row(row, f"{path}:{number}")

    return check


def start_rows(
    spec: TaskSpec,
    data: Path,
    options: RunOptions,
    check: Callable[[Path, list[dict]], None] | None = None,
    read: Callable[[Path], list[dict]] = sources.read_jsonl,
) -> tuple[list[dict], dict[str, Any], list[int]]:
    """(data rows checked by ``check(path, rows)``, the spec resolved against them, the sampled
    indices): how a family's model run starts. ``read``: its reader (default: one JSONL file;
    no ``check``: the reader checks)."""
    from evals.spec import resolve

    rows = read(data)
    if check is not None:
        check(data, rows)
    resolved = resolve(spec, data, len(rows))
    return rows, resolved, sampled(spec, len(rows), options.limit)


def generate_rows(
    spec: TaskSpec,
    model_dir: Path,
    out_dir: Path,
    options: RunOptions,
    data_rows: list[dict],
    indices: list[int],
    prompt: Callable[[dict], list[dict[str, str]] | str],
    score: Callable[[dict, str], dict],
    *,
    until: Sequence[str],
    default_max_gen_toks: int,
    ids: Callable[[dict], dict[str, Any]] = lambda row: {},
) -> tuple[list[dict], dict[str, Any]]:
    """:func:`run` on the ``prompt`` of each sampled data row; returns (rows, harness).

    Request ``k`` records ``index`` (its data row) and ``ids(row)``; row ``k`` is ``doc_id``,
    ``index`` and ``score(data row, generation)``."""
    requests, texts, harness = run(
        spec, Path(model_dir), out_dir, options, [prompt(data_rows[i]) for i in indices],
        until=until, default_max_gen_toks=default_max_gen_toks,
        extra=lambda k: {"index": indices[k], **ids(data_rows[indices[k]])},
    )  # fmt: skip
    rows = [
        {"doc_id": r["doc_id"], "index": r["index"], **score(data_rows[r["index"]], text)}
        for r, text in zip(requests, texts, strict=True)
    ]
    return rows, harness


def evaluate_rows(
    spec: TaskSpec,
    kind: str,
    model_dir: Path,
    data: Path,
    out_dir: Path,
    options: RunOptions,
    prompt: Callable[[dict], list[dict[str, str]] | str],
    score: Callable[[dict, str], dict],
    metrics: Callable[[list[dict]], dict[str, float]],
    *,
    until: Sequence[str],
    default_max_gen_toks: int,
    check: Callable[[Path, list[dict]], None] | None = None,
    read: Callable[[Path], list[dict]] = sources.read_jsonl,
    ids: Callable[[dict], dict[str, Any]] = lambda row: {},
) -> dict[str, Any]:
    """A whole model run of a generative family: :func:`start_rows`, :func:`generate_rows`,
    then the result (``metrics`` of the rows) written by :func:`write`."""
    data_rows, resolved, indices = start_rows(spec, data, options, check, read)
    rows, harness = generate_rows(
        spec, model_dir, out_dir, options, data_rows, indices, prompt, score, until=until,
        default_max_gen_toks=default_max_gen_toks, ids=ids,
    )  # fmt: skip
    return write(
        spec, kind, resolved, harness, model_dir, out_dir, options.limit, rows, metrics(rows)
    )


def prepare(
    spec: TaskSpec,
    model_dir: Path,
    data: Path,
    options: RunOptions,
    default_toks: int,
    check: Any,
    read: Callable[[Path], list[dict]] = sources.read_jsonl,
) -> tuple[list[dict], dict[str, Any], list[int], Any, Generation, int]:
    """What an item-file generative family starts with: the items (checked by ``check(path,
    items)``), the resolved spec, the sampled indices, the model, and the generation budget
    (``default_toks`` unless ``options.max_gen_toks`` is given) with the model's max length.
    ``read``: the family's reader of its data (default: one JSONL file)."""
    items, resolved, indices = start_rows(spec, data, options, check, read)
    lm = load(model_dir, options)
    wanted = options.max_gen_toks or default_toks
    generation, max_length = capped_budget(lm, wanted, options.max_gen_toks is not None)
    return items, resolved, indices, lm, generation, max_length


def finish(
    spec: TaskSpec,
    kind: str,
    resolved: dict[str, Any],
    rows: list[dict],
    *,
    options: RunOptions,
    generation: Generation,
    max_length: int,
    system: str | None,
    model_dir: Path,
    out_dir: Path,
    requests: list[dict],
) -> dict[str, Any]:
    """The end of an item-file generative family's run: the harness block (generation settings,
    system prompt) and the one result writer."""
    out_dir.mkdir(parents=True, exist_ok=True)
    harness = harness_block(
        options, max_gen_toks=generation.max_gen_toks, max_length=max_length, system=system,
        generation=generation.to_dict(),
    )  # fmt: skip
    return write_result(
        spec, kind, resolved, rows, harness=harness, model_dir=model_dir, out_dir=out_dir,
        limit=options.limit, requests=requests,
    )  # fmt: skip
