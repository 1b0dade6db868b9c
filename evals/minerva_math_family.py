"""How ``minerva_math::tulu`` is run and scored (the family); the specs and prompt format live
in :mod:`evals.minerva_math`.

Kept apart from the specs because the registry (which curate imports to find the eval sets it
decontaminates against) imports the spec module: an edit of the answer check or the shared
verifiers must rerun evaluation, never curation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evals import math_answer
from evals.families import Family, RunOptions
from evals.metrics import group_means
from evals.minerva_math import (
    MAX_GEN_TOKS,
    VERIFIER,
    chat_messages,
    check_rows,
    equivalence,
    subject_key,
)
from evals.spec import TaskSpec
from evals.verifiers import get_verifier


def rescore(row: dict) -> dict:
    """A record with ``exact_match_flex`` (the shared verifier) and ``exact_match`` (the
    Minerva "Final Answer" only) (re)computed from its response and gold."""
    flex = get_verifier(VERIFIER)(row["response"], row["gold"])
    strict = float(math_answer.strict_match(row["response"], row["gold"]))
    return {**row, "exact_match_flex": flex, "exact_match": strict}


def metrics(records: list[dict]) -> dict[str, float]:
    """Per-subject means, their macro average (the primary ``exact_match_flex``) and the micro
    average over instances."""
    if not records:
        raise ValueError("no predictions to score")
    out: dict[str, float] = {}
    for name in ("exact_match_flex", "exact_match"):
        means = group_means((r["subject"], r[name]) for r in records)
        out[name] = sum(means.values()) / len(means)
        out[f"{name}_micro"] = sum(r[name] for r in records) / len(records)
        out.update({f"{name}_{s}": m for s, m in means.items()})
    return out


def recompute_metrics(rows: list[dict], spec: dict[str, Any]) -> dict[str, float]:
    """Metrics from saved rows (response, gold, subject); refused where the result was computed
    with another equivalence than this environment applies."""
    recorded = spec.get("equivalence")
    if recorded is not None and recorded != equivalence():
        raise ValueError(
            f"this result used MATH equivalence {recorded!r}; this environment applies "
            f"{equivalence()!r} (sympy's LaTeX parser needs antlr4-python3-runtime 4.11): "
            "recompute where the same equivalence runs"
        )
    return metrics([rescore({k: r[k] for k in ("response", "gold", "subject")}) for r in rows])


def _with_equivalence(resolved: dict[str, Any]) -> dict[str, Any]:
    """A resolved spec with the MATH equivalence this environment applies."""
    return {**resolved, "equivalence": equivalence()}


def score_file(
    spec: TaskSpec, predictions: Path, data: Path | None, out_dir: Path | None
) -> dict[str, Any]:
    """Score JSONL ``problem``/``response`` rows; gold and subject from ``data`` (matched by
    problem text) or from the row's own ``solution`` and ``type``/``subject``."""
    from evals import results, sources
    from evals.spec import resolve

    data_rows = sources.read_rows(data, spec.split) if data else []
    if data:
        check_rows(data, data_rows)
    rows = []
    for pred, source in results.with_sources(
        predictions, data_rows, "problem", ("problem", "response"),
        lambda s: "solution" in s and bool(s.get("type") or s.get("subject")),
        "'solution' and 'type' fields",
    ):  # fmt: skip
        rows.append(
            rescore(
                {
                    "problem": pred["problem"],
                    "subject": subject_key(source.get("type") or source["subject"]),
                    "response": pred["response"],
                    "gold": math_answer.gold_of_solution(source["solution"]),
                }
            )
        )
    resolved = _with_equivalence(resolve(spec, data, len(data_rows)) if data else spec.to_dict())
    result = results.envelope(
        spec, "minerva_math", resolved, metrics(rows), instances=len(rows),
        model={"predictions": sources.digest(predictions)},
    )  # fmt: skip
    if out_dir:
        results.write_result(out_dir, result, rows)
        return results.load_result(out_dir)
    return result


def evaluate(
    spec: TaskSpec, model_dir: Path, data: Path, out_dir: Path, options: RunOptions
) -> dict[str, Any]:
    """4-shot Minerva chat prompts -> greedy generations -> flex exact match; writes the result."""
    from evals import generative, sources

    data_rows, resolved, indices = generative.start_rows(
        spec, data, options, check_rows, lambda path: sources.read_rows(path, spec.split)
    )
    resolved = _with_equivalence(resolved)
    shots = sources.read_jsonl(sources.bundled(spec.fewshot.file))[: spec.fewshot.n]
    rows, harness = generative.generate_rows(
        spec, model_dir, out_dir, options, data_rows, indices,
        lambda row: chat_messages(row["problem"], shots),
        lambda row, text: rescore(
            {
                "problem": row["problem"],
                "subject": subject_key(row.get("type") or row["subject"]),
                "response": text,
                "gold": math_answer.gold_of_solution(row["solution"]),
            }
        ),
        until=generative.END_OF_TURN, default_max_gen_toks=MAX_GEN_TOKS,
    )  # fmt: skip
    return generative.write(
        spec, "minerva_math", resolved, harness, model_dir, out_dir, options.limit, rows,
        metrics(rows),
    )  # fmt: skip


def texts(data: Path) -> list[str]:
    """The problem of each row (what decontamination matches training data against)."""
    from evals import sources

    return [row["problem"] for row in sources.read_rows(data, "test")]


FAMILY = Family(
    kind="minerva_math", metrics=recompute_metrics, evaluate=evaluate, score=score_file,
    texts=texts,
)  # fmt: skip
