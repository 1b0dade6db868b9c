"""What the generative research tasks (SimpleToM, Digital Socrates) share: chat prompts under the
model's template, a generation budget that fits the model's context, and the result's model and
harness blocks. Every model call still goes through :mod:`evals.engine`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evals import engine
from evals.families import RunOptions, family


def load(model_dir: Path, options: RunOptions) -> Any:
    """The options' already loaded model, else the model dir loaded through the engine."""
    if options.lm is not None:
        return options.lm
    return engine.load_model(
        model_dir, options.batch_size, backend=options.backend, device=options.device
    )


def chat_context(lm: Any, system: str | None, user: str) -> str:
    """The prompt string under the tokenizer's chat template (a clear error when it has none)."""
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": user})
    return engine.render_chat(engine.tokenizer_of(lm), messages)


def budget(lm: Any, wanted: int) -> tuple[int, int]:
    """``(max_gen_toks, max_length)``: the wanted generation length, capped at half the model's
    context so lm-eval keeps room for the prompt (it left-truncates prompts longer than the rest;
    each prediction row records its prompt length so a truncation is visible)."""
    max_length = int(lm.max_length)
    return max(1, min(wanted, max_length // 2)), max_length


def prompt_tokens(lm: Any, context: str) -> int:
    """Tokens of a rendered prompt as lm-eval encodes it."""
    return len(lm.tok_encode(context))


def model_block(model_dir: Path) -> dict[str, str]:
    from evals.harness import model_digest

    return {"digest": model_digest(Path(model_dir)), "name": Path(model_dir).name}


def harness_block(options: RunOptions, **extra: Any) -> dict[str, Any]:
    from evals.harness import versions

    return {
        "engine": "lm_eval.simple_evaluate",
        "backend": options.backend,
        "batch_size": options.batch_size,
        "seed": options.seed,
        "versions": versions(),
        **extra,
    }


def write_result(
    spec: Any,
    kind: str,
    resolved: dict[str, Any],
    rows: list[dict],
    requests: list[dict],
    *,
    options: RunOptions,
    model_dir: Path,
    out_dir: Path,
    harness: dict[str, Any],
) -> dict[str, Any]:
    """Write requests.jsonl, predictions and result.json of a run; return the result loaded."""
    from evals import results, sources
    from evals.spec import spec_hash
    from reprolm.canonical import canonical_json

    requests_path = out_dir / "requests.jsonl"
    requests_path.write_text("".join(canonical_json(r) + "\n" for r in requests), "utf-8")
    values = family(kind).metrics(rows, resolved)
    result = {
        "task_id": spec.task_id,
        "kind": kind,
        "spec_hash": spec_hash(resolved),
        "spec": resolved,
        "metrics": values,
        "primary_metric": spec.primary_metric,
        "primary": values[spec.primary_metric],
        "instances": len(rows),
        "limit": options.limit,
        "model": model_block(model_dir),
        "harness": harness,
        "files": {
            "requests": {"path": requests_path.name, "blake3": sources.digest(requests_path)}
        },
    }
    results.write_result(out_dir, result, rows)
    return results.load_result(out_dir)
