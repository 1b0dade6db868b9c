"""Benchmark ``evals`` against plain lm-eval on one rc task (tiny random OLMo 2, CPU).

Eval set: the ARC-Challenge few-shot fixture (11 items x 4 choices) with the 5 curated ARC-Easy
shots (spec ``arc_easy:rc::olmes``). Measures, best of ``--repeats``, with the model loaded once:

* ``plain``: ``lm_eval.simple_evaluate`` on the ARC rc task written as a plain lm-eval YAML
  (lm-eval builds the few-shot prompts itself);
* ``project_no_pmi``: the project's run of the same spec without the PMI task (same 44 requests:
  the overhead ratio is ``project_no_pmi / plain``);
* ``project``: the full spec (44 conditional + 44 unconditional requests);
* the full spec at batch size 1 and 8: requests/s, and whether metrics and log-likelihoods change;
* generation (``gsm8k:cot::tulu``, ``ifeval::tulu``) on the tiny chat model (ChatML, 256-token
  context, ``--gen-limit`` instances, ``--gen-toks`` new tokens) at batch 1 and 8: the project's
  run against plain lm-eval's ``generate_until`` on the same rendered requests (same contexts,
  ``until``, ``max_gen_toks``, greedy; same model object), interleaved, best of ``--repeats``:
  requests/s, generated tokens/s (new tokens of ``model.generate``'s output, up to the first end
  token), the ratio project/plain (target >= 0.95), ``generate_until_s`` / ``generation_share``
  (lm-eval's generation inside the project's run: its overhead without cross-run noise), and
  whether the texts are identical project vs plain and batch 1 vs 8.

Writes JSON to benchmarks/results/eval.json.   python benchmarks/eval.py [--threads 1] [--small]
(``--small``: 1 repeat, 2 instances x 16 tokens per generative spec; the CI size).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evals import generative as generative_mod  # noqa: E402
from evals import sources  # noqa: E402
from evals.families import RunOptions, family_of  # noqa: E402
from evals.multiple_choice import evaluate_mc, load_hf  # noqa: E402
from evals.registry import get_spec  # noqa: E402
from reprolm.canonical import dump_json  # noqa: E402
from reprolm.environment import cpu_model  # noqa: E402
from tests.evals.chat_model import build_chat_model  # noqa: E402
from tests.evals.conftest import (  # noqa: E402
    ARC_CHALLENGE,
    GSM8K_TEST,
    IFEVAL_DATA,
    build_tiny_model,
)
from tests.evals.test_multiple_choice import plain_task_yaml  # noqa: E402

TASK = "arc_easy:rc::olmes"
GENERATIVE = {
    "gsm8k:cot::tulu": GSM8K_TEST,
    "ifeval::tulu": IFEVAL_DATA,
}


def plain_generate(lm, requests: list[dict], generation: dict) -> list[str]:
    """The same requests through lm-eval's model API directly (``lm.generate_until`` on
    ``Instance`` objects): the plain lm-eval baseline, no task, dataset or metrics."""
    from lm_eval.api.instance import Instance

    kwargs = {
        "until": list(generation["until"]),
        "max_gen_toks": generation["max_gen_toks"],
        "do_sample": False,
    }
    instances = [
        Instance("generate_until", {}, (r["context"], dict(kwargs)), i)
        for i, r in enumerate(requests)
    ]
    return lm.generate_until(instances, disable_tqdm=True)


@contextlib.contextmanager
def counting_tokens(lm, counts: list[int]):
    """Append to ``counts`` the new tokens of each row ``lm.model.generate`` returns while
    inside: up to and including the first end token, else all (a row that passed a stop
    string keeps generating until its batch stops: that is generated work too)."""
    import torch

    model, ends = lm.model, lm.model.generation_config.eos_token_id
    ends = torch.tensor(ends if isinstance(ends, list) else [ends])
    original = model.generate

    def generate(*args, **kwargs):
        out = original(*args, **kwargs)
        new = out[:, kwargs["input_ids"].shape[1] :]
        for row in new:
            hit = torch.isin(row, ends).nonzero()
            counts.append(int(hit[0]) + 1 if len(hit) else len(row))
        return out

    model.generate = generate
    try:
        yield
    finally:
        del model.generate


@contextlib.contextmanager
def timing_generate_until(lm, spent: list[float]):
    """Append to ``spent`` the seconds of each ``lm.generate_until`` call while inside: the
    generation inside a project run, so its own overhead is measured within the same run."""
    original = lm.generate_until

    def generate_until(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - start)

    lm.generate_until = generate_until
    try:
        yield
    finally:
        del lm.generate_until


def timing(seconds: float, n_requests: int, tokens: int) -> dict:
    return {
        "seconds": seconds,
        "requests": n_requests,
        "req_per_s": n_requests / seconds,
        "generated_tokens": tokens,
        "tokens_per_s": tokens / seconds,
    }


def generative(model: Path, tmp: Path, limit: int, gen_toks: int, repeats: int) -> dict:
    """Per generative spec and batch size (1, 8), best of ``repeats`` (model loaded before):
    the project's run (``family.evaluate``) and plain lm-eval's ``generate_until`` on the same
    rendered requests, interleaved; requests/s, generated tokens/s, ratio project/plain, and
    whether the texts are identical between project and plain and between batch sizes."""
    from evals import lmeval

    chat = build_chat_model(model, tmp / "chat")
    lms = {bs: lmeval.load_model(chat, bs) for bs in (1, 8)}
    out = {}
    for task_id, data in GENERATIVE.items():
        spec = get_spec(task_id)
        entry, texts, plain_texts = {}, {}, {}
        entry["plain_lm_eval"], entry["tokens_per_s_ratio"], entry["overhead_s"] = {}, {}, {}
        for bs, lm in lms.items():
            options = RunOptions(limit=limit, batch_size=bs, max_gen_toks=gen_toks, lm=lm)
            where = tmp / f"{task_id.replace(':', '_')}_{bs}"
            t_project = t_plain = float("inf")
            t_inner = 0.0
            for _ in range(repeats):  # interleaved: machine load hits both sides alike
                counts, plain_counts, inner = [], [], []
                with counting_tokens(lm, counts), timing_generate_until(lm, inner):
                    start = time.perf_counter()
                    result = family_of(spec).evaluate(spec, chat, data, where, options)
                    seconds = time.perf_counter() - start
                if seconds < t_project:
                    t_project, t_inner = seconds, sum(inner)
                requests = sources.read_jsonl(where / generative_mod.REQUESTS)
                generation = result["harness"]["generation"]
                with counting_tokens(lm, plain_counts):
                    start = time.perf_counter()
                    plain_texts[bs] = plain_generate(lm, requests, generation)
                    t_plain = min(t_plain, time.perf_counter() - start)
            texts[bs] = [r["response"] for r in sources.read_jsonl(where / "predictions.jsonl")]
            tokens, plain_tokens = sum(counts), sum(plain_counts)
            entry[f"bs{bs}"] = {
                **timing(t_project, result["instances"], tokens),
                "primary": result["primary"],
                "generate_until_s": t_inner,  # lm-eval's generate_until inside this run
                "generation_share": t_inner / t_project,
            }
            entry["plain_lm_eval"][f"bs{bs}"] = timing(t_plain, len(requests), plain_tokens)
            entry["tokens_per_s_ratio"][f"bs{bs}"] = (tokens / t_project) / (plain_tokens / t_plain)
            entry["overhead_s"][f"bs{bs}"] = t_project - t_plain
        entry["outputs_identical"] = texts[1] == texts[8]
        entry["identical_texts"] = all(texts[bs] == plain_texts[bs] for bs in lms)
        entry["max_gen_toks"] = gen_toks
        entry["until"] = generation["until"]
        out[task_id] = entry
    return out


def best_of(repeats: int, fn) -> tuple[float, object]:
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return min(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--gen-limit", type=int, default=32)
    parser.add_argument("--gen-toks", type=int, default=128)
    parser.add_argument("--small", action="store_true", help="CI size: 1 repeat, 2 x 16 tokens")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "eval.json")
    args = parser.parse_args()
    if args.small:
        args.repeats, args.gen_limit, args.gen_toks = 1, 2, 16

    import lm_eval
    import torch
    from lm_eval.tasks import TaskManager

    torch.set_num_threads(args.threads)
    spec = get_spec(TASK)
    no_pmi = dataclasses.replace(
        spec, uncond_context=None, normalizations=("raw", "per_token", "per_char")
    )
    n_docs = len(sources.read_jsonl(ARC_CHALLENGE))
    n_req = 4 * n_docs
    tmp = Path(tempfile.mkdtemp(prefix="reprolm-bench-eval-"))
    try:
        model = build_tiny_model(tmp / "model")
        shots = sources.read_jsonl(sources.bundled(spec.fewshot.file))[: spec.fewshot.n]
        (tmp / "plain").mkdir()
        (tmp / "plain" / "plain_arc.yaml").write_text(plain_task_yaml("plain_arc", shots))
        lms = {bs: load_hf(model, bs) for bs in (1, 8)}

        def plain():
            return lm_eval.simple_evaluate(
                model=lms[1],
                tasks=["plain_arc"],
                bootstrap_iters=0,
                log_samples=True,
                task_manager=TaskManager(include_path=str(tmp / "plain"), include_defaults=False),
            )["results"]["plain_arc"]["acc,none"]

        def project(s, bs, name):
            return lambda: evaluate_mc(
                s, model, ARC_CHALLENGE, tmp / name, batch_size=bs, lm=lms[bs]
            )

        t_plain, plain_acc = best_of(args.repeats, plain)
        t_no_pmi, r_no_pmi = best_of(args.repeats, project(no_pmi, 1, "nopmi"))
        t_bs1, r_bs1 = best_of(args.repeats, project(spec, 1, "bs1"))
        t_bs8, r_bs8 = best_of(args.repeats, project(spec, 8, "bs8"))
        p1 = sources.read_jsonl(tmp / "bs1" / "predictions.jsonl")
        p8 = sources.read_jsonl(tmp / "bs8" / "predictions.jsonl")
        diffs = [
            abs(a["loglik"] - b["loglik"])
            for r1, r8 in zip(p1, p8, strict=True)
            for a, b in zip(r1["choices"], r8["choices"], strict=True)
        ]
        gen = generative(model, tmp, args.gen_limit, args.gen_toks, args.repeats)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    report = {
        "task": TASK,
        "instances": n_docs,
        "threads": args.threads,
        "repeats": args.repeats,
        "model": "random Olmo2 hidden 32 x 2 layers, BPE vocab 400",
        "plain_lm_eval": {
            "seconds": t_plain,
            "requests": n_req,
            "req_per_s": n_req / t_plain,
            "acc": plain_acc,
        },
        "project_no_pmi": {
            "seconds": t_no_pmi,
            "requests": n_req,
            "req_per_s": n_req / t_no_pmi,
            "acc_raw": r_no_pmi["metrics"]["acc_raw"],
        },
        "overhead_ratio": t_no_pmi / t_plain,
        "project_bs1": {
            "seconds": t_bs1,
            "requests": 2 * n_req,
            "req_per_s": 2 * n_req / t_bs1,
            "metrics": r_bs1["metrics"],
        },
        "project_bs8": {
            "seconds": t_bs8,
            "requests": 2 * n_req,
            "req_per_s": 2 * n_req / t_bs8,
            "metrics": r_bs8["metrics"],
        },
        "batch_size_metrics_equal": r_bs1["metrics"] == r_bs8["metrics"],
        "batch_size_max_abs_loglik_diff": max(diffs),
        "plain_acc_equals_project": plain_acc == r_no_pmi["metrics"]["acc_raw"],
        "generative": gen,
        "generation_target_ratio": 0.95,
        "generation_min_tokens_per_s_ratio": min(
            r for entry in gen.values() for r in entry["tokens_per_s_ratio"].values()
        ),
        "generation_min_share": min(
            entry[f"bs{bs}"]["generation_share"] for entry in gen.values() for bs in (1, 8)
        ),
        "generation_tokens": "new tokens per row of the model's generate() output, up to and "
        "including the first end token (rows past a stop string count until their batch stops)",
        "generation_identical_texts": all(e["identical_texts"] for e in gen.values()),
        "small": args.small,
        "machine": {
            "cpu_model": cpu_model(),
            "cpu_count": os.cpu_count(),
            "torch_threads": args.threads,
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "versions": r_bs1["harness"]["versions"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(dump_json(report), encoding="utf-8")
    print(json.dumps(report, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
