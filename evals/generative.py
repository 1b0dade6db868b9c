"""Generative specs on a model: chat-rendered prompts, greedy generation through the engine.

Shared by the GSM8K and IFEval families. A family supplies the chat messages of each instance
and its stop strings; this module renders them with the model's chat template
(:func:`engine.render_chat`), decides the generation budget, records left truncation (lm-eval
keeps the *last* ``max_length - max_gen_toks`` prompt tokens) and calls :func:`engine.generate`.

A model without a chat template is refused rather than given a plain-text fallback: the spec id
pins the chat format (``gsm8k:cot::tulu`` is Tulu 3's chat prompt), so a plain prompt would be a
different task under the same id and hash. A plain-text format would need a spec id of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evals import engine, sources
from evals.families import RunOptions
from evals.spec import TaskSpec
from reprolm.canonical import canonical_json

REQUESTS = "requests.jsonl"
END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<|end|>")  # ChatML, Llama 3, Phi: stop tokens


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
    lm = options.lm or engine.load_model(
        model_dir, options.batch_size, backend=options.backend, device=options.device
    )
    tok = engine.tokenizer_of(lm)
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
    messages: Sequence[list[dict[str, str]]],
    *,
    until: Sequence[str],
    default_max_gen_toks: int,
    extra: Callable[[int], dict[str, Any]] = lambda i: {},
) -> tuple[list[dict], list[str], dict[str, Any]]:
    """Render, write ``requests.jsonl``, generate. Returns (requests, generations, harness).

    ``extra(i)`` adds fields (index, id) to request ``i``; ``harness`` is the result's harness
    block (engine, backend, batch size, seed, generation budget, context, truncation, versions).
    """
    from evals.harness import versions

    lm, tok = chat_model(options, model_dir, spec.task_id)
    max_length = int(lm.max_length)
    max_gen_toks, source = budget(
        options.max_gen_toks, default_max_gen_toks, max_length, spec.task_id
    )
    generation = Generation(tuple(until), max_gen_toks, source)
    keep = max_length - max_gen_toks
    requests = []
    for doc_id, conversation in enumerate(messages):
        context = engine.render_chat(tok, conversation)
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
    engine.stop_at_tokens(lm, [t for t in END_OF_TURN if t in until])
    texts = engine.generate(
        lm,
        [{"doc_id": r["doc_id"], "context": r["context"]} for r in requests],
        until=until,
        max_gen_toks=max_gen_toks,
        seed=options.seed,
    )
    harness = {
        "engine": "lm_eval.simple_evaluate",
        "backend": options.backend,
        "batch_size": options.batch_size,
        "seed": options.seed,
        "generation": generation.to_dict(),
        "max_length": max_length,
        "truncated_instances": sum(1 for r in requests if r["truncated_tokens"]),
        "versions": versions(),
    }
    return requests, [texts[r["doc_id"]] for r in requests], harness


def result_fields(
    spec: TaskSpec,
    resolved: dict[str, Any],
    harness: dict[str, Any],
    model_dir: Path,
    out_dir: Path,
    limit: int | None,
) -> dict[str, Any]:
    """The result.json fields every generative run shares (metrics are the family's).

    The generation settings join the resolved spec, so they are covered by its hash.
    """
    from evals.harness import model_digest
    from evals.spec import spec_hash

    resolved = {**resolved, "generation": harness["generation"]}
    return {
        "task_id": spec.task_id,
        "spec_hash": spec_hash(resolved),
        "spec": resolved,
        "primary_metric": spec.primary_metric,
        "limit": limit,
        "model": {"digest": model_digest(model_dir), "name": Path(model_dir).name},
        "harness": harness,
        "files": {"requests": {"path": REQUESTS, "blake3": sources.digest(out_dir / REQUESTS)}},
    }


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
    """Write a generative run's result directory (result.json + predictions); return it loaded."""
    from evals import results

    result = result_fields(spec, resolved, harness, model_dir, out_dir, limit)
    result.update(kind=kind, metrics=metrics, instances=len(rows))
    result["primary"] = metrics[spec.primary_metric]
    results.write_result(out_dir, result, rows)
    return results.load_result(out_dir)


def sampled(spec: TaskSpec, n_rows: int, limit: int | None) -> list[int]:
    """The spec's instance indices, the first ``limit`` of them when given."""
    indices = sources.sample_indices(
        n_rows, threshold=spec.sample_threshold, size=spec.sample_size, seed=spec.sample_seed
    )
    return indices if limit is None else indices[:limit]
