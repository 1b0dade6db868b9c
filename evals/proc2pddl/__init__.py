"""Proc2PDDL (``proc2pddl::no_text``, ``proc2pddl::with_text``): a model writes the ``:action``
blocks of a PDDL domain from its header and action descriptions (+ the procedural text); the
predicted domain is parsed and every gold problem is solved by a breadth-first planner.

``evaluate`` generates through ``lmeval.generate``; ``score`` reads a folder of predicted action
files ``<domain id>.txt`` (the upstream layout). One prediction row per domain; ``metrics`` in
``scoring.py``; the headline is the solve rate over problem files with a gold plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evals.families import Family, RunOptions
from evals.proc2pddl import data as p2data
from evals.proc2pddl import prompts, scoring
from evals.spec import TaskSpec
from reprolm.canonical import canonical_json

REQUESTS = "requests.jsonl"
UNTIL = ("<|im_end|>", "<|endoftext|>")


@dataclass(frozen=True)
class Proc2PDDLSpec(TaskSpec):
    """A TaskSpec plus what decides a Proc2PDDL number beyond the prompt."""

    variant: str = "with_text"  # a prompts.TEMPLATES key
    planner_timeout: float = 30.0  # seconds per problem (the paper's limit)
    max_gen_toks: int = 2048  # capped at half the model's context when that is smaller


def _spec(variant: str, prompt: str) -> Proc2PDDLSpec:
    return Proc2PDDLSpec(
        task_id=f"proc2pddl::{variant}",
        dataset="zharry29/proc2pddl:pddl_data",
        split="test",
        fewshot=None,
        prompt_format=f"proc2pddl_{prompt}_chat",
        normalizations=("upstream_postprocess", "header_plus_actions_plus_paren"),
        primary_metric="solve_rate",
        version=1,
        variant=variant,
    )


SPECS = {
    s.task_id: s
    for s in (_spec("no_text", "instruction_no_text"), _spec("with_text", "instruction_text"))
}
DEFAULT = "proc2pddl::with_text"  # what `reprolm eval score proc2pddl` resolves to


def resolve(spec: TaskSpec, cases: list[p2data.DomainCase], digest: str) -> dict[str, Any]:
    """The spec + the digest of the data files read, the domain count and the domains used."""
    resolved = spec.to_dict()
    resolved.update(
        dataset_digest=digest,
        dataset_rows=len(cases),
        fewshot_digest=None,
        instances=[c.domain_id for c in cases],
    )
    return resolved


def _timeout(spec: TaskSpec) -> float:
    return float(getattr(spec, "planner_timeout", 30.0))


def score_dir(
    spec: TaskSpec, predictions: Path, data: Path | None, out_dir: Path | None
) -> dict[str, Any]:
    """Score predicted action files ``<domain id>.txt`` (as written, no post-processing)."""
    if data is None:
        raise ValueError(f"{spec.task_id}: --data DIR is required (the pddl_data/ + gold plans)")
    if not predictions.is_dir():
        raise ValueError(f"{predictions}: expected a folder of <domain id>.txt action files")
    cases, digest = p2data.load(data)
    by_id = {c.domain_id: c for c in cases}
    files = sorted(predictions.glob("*.txt"))
    unknown = [f.name for f in files if f.stem not in by_id]
    if unknown:
        raise ValueError(f"{predictions}: no domain in {data} for {', '.join(unknown)}")
    if not files:
        raise ValueError(f"{predictions}: no <domain id>.txt prediction files")
    used = [by_id[f.stem] for f in files]
    rows = [
        scoring.score_domain(case, f.read_text(encoding="utf-8"), _timeout(spec))
        for case, f in zip(used, files, strict=True)
    ]
    return _result(spec, resolve(spec, used, digest), rows, out_dir, {"predictions": predictions})


def _result(spec, resolved, rows, out_dir, model: dict, extra: dict | None = None):
    from evals import results
    from evals.sources import digest as file_digest

    metrics = scoring.metrics(rows, resolved)
    identity = model
    if "predictions" in model:  # a folder: its files' digests, by name
        folder = model["predictions"]
        identity = {"predictions": {f.name: file_digest(f) for f in sorted(folder.glob("*.txt"))}}
    result = results.envelope(
        spec, "proc2pddl", resolved, metrics, instances=len(rows), model=identity, **(extra or {})
    )
    if out_dir is None:
        return result
    results.write_result(out_dir, result, rows)
    return results.load_result(out_dir)


def evaluate(
    spec: TaskSpec, model_dir: Path, data: Path, out_dir: Path, options: RunOptions
) -> dict[str, Any]:
    """Generate the actions of each domain with the model (chat prompt), then score them."""
    from evals import lmeval, sources
    from evals.lmeval import model_digest, versions

    cases, digest = p2data.load(data)
    cases = cases[: options.limit] if options.limit else cases
    lm = options.lm or lmeval.load_model(
        model_dir, options.batch_size, backend=options.backend, device=options.device
    )
    tokenizer = lmeval.tokenizer_of(lm)
    context = int(getattr(lm, "max_length", 2048))
    wanted = options.max_gen_toks or getattr(spec, "max_gen_toks", 2048)
    max_gen = min(wanted, max(1, context // 2))
    variant = getattr(spec, "variant", "with_text")
    requests = [
        _request(i, case, variant, tokenizer, context - max_gen) for i, case in enumerate(cases)
    ]
    generated = lmeval.generate(
        lm,
        [{"doc_id": r["doc_id"], "context": r["context"]} for r in requests],
        until=UNTIL,
        max_gen_toks=max_gen,
        seed=options.seed,
    )
    rows = []
    for request, case in zip(requests, cases, strict=True):
        completion = generated[request["doc_id"]]
        row = scoring.score_domain(case, scoring.extract_actions(completion), _timeout(spec))
        rows.append({**row, "completion": completion})
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / REQUESTS).write_text(
        "".join(canonical_json(r) + "\n" for r in requests), encoding="utf-8"
    )
    harness = {
        "engine": "lm_eval.simple_evaluate",
        "backend": options.backend,
        "batch_size": options.batch_size,
        "seed": options.seed,
        "max_gen_toks": max_gen,
        "model_max_length": context,
        "until": list(UNTIL),
        "versions": versions(),
    }
    extra = {
        "limit": options.limit,
        "harness": harness,
        "files": {"requests": {"path": REQUESTS, "blake3": sources.digest(out_dir / REQUESTS)}},
    }
    model = {"digest": model_digest(model_dir), "name": Path(model_dir).name}
    return _result(spec, resolve(spec, cases, digest), rows, out_dir, model, extra)


def _request(doc_id: int, case, variant: str, tokenizer, budget: int) -> dict[str, Any]:
    """The chat prompt; the procedural text is cut (from the end) until the prompt fits
    ``budget`` tokens, and how much was kept is recorded. A prompt too long even without the
    text is left whole (lm-eval then keeps its last tokens)."""
    from evals import lmeval

    def render(text: str | None) -> str:
        return lmeval.render_chat(tokenizer, prompts.messages(case, variant, text))

    def size(prompt: str) -> int:
        return len(tokenizer(prompt, add_special_tokens=False)["input_ids"])

    text = case.text
    prompt = render(None)
    n = size(prompt)
    if variant == "with_text" and n > budget and text:
        low, high = 0, len(text)  # longest prefix of the text that fits (binary search)
        while low < high:
            mid = (low + high + 1) // 2
            if size(render(text[:mid])) <= budget:
                low = mid
            else:
                high = mid - 1
        text = text[:low]
        prompt = render(text)
        n = size(prompt)
    return {
        "doc_id": doc_id,
        "index": doc_id,  # the domain's position in the dataset (cases are a prefix of it)
        "domain_id": case.domain_id,
        "context": prompt,
        "prompt_tokens": n,
        "text_chars": len(text) if variant == "with_text" else 0,
        "text_chars_full": len(case.text) if variant == "with_text" else 0,
        "fits": n <= budget,
    }


def resolve_data(spec: TaskSpec, data: Path) -> dict[str, Any]:
    """The resolved spec of a Proc2PDDL data directory, every domain (``evaluate``, no limit)."""
    cases, digest = p2data.load(data)
    return resolve(spec, cases, digest)


def texts(data: Path) -> list[str]:
    """Per domain (in dataset order) its procedural text, else its action descriptions
    (``actions.txt``): the natural-language part of what the model is asked."""
    cases, _ = p2data.load(data)
    return [case.text or case.actions_txt for case in cases]


FAMILY = Family(
    kind="proc2pddl",
    metrics=scoring.metrics,
    evaluate=evaluate,
    score=score_dir,
    resolve=resolve_data,
    texts=texts,
)
