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
  context, ``--gen-limit`` instances, ``--gen-toks`` new tokens), once at batch 1 and once at 8:
  requests/s and whether every generated text is identical across the two batch sizes.

Writes JSON to benchmarks/results/eval.json.   python benchmarks/eval.py [--threads 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evals import sources  # noqa: E402
from evals.families import RunOptions, family_of  # noqa: E402
from evals.multiple_choice import evaluate_mc, load_hf  # noqa: E402
from evals.registry import get_spec  # noqa: E402
from reprolm.canonical import dump_json  # noqa: E402
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


def generative(model: Path, tmp: Path, limit: int, gen_toks: int) -> dict:
    """Per generative spec: req/s at batch 1 and 8 (one timed run each, model loaded before)."""
    from evals import lmeval

    chat = build_chat_model(model, tmp / "chat")
    lms = {bs: lmeval.load_model(chat, bs) for bs in (1, 8)}
    out = {}
    for task_id, data in GENERATIVE.items():
        spec = get_spec(task_id)
        entry, texts = {}, {}
        for bs, lm in lms.items():
            options = RunOptions(limit=limit, batch_size=bs, max_gen_toks=gen_toks, lm=lm)
            where = tmp / f"{task_id.replace(':', '_')}_{bs}"
            start = time.perf_counter()
            result = family_of(spec).evaluate(spec, chat, data, where, options)
            seconds = time.perf_counter() - start
            texts[bs] = [r["response"] for r in sources.read_jsonl(where / "predictions.jsonl")]
            entry[f"bs{bs}"] = {
                "seconds": seconds,
                "requests": result["instances"],
                "req_per_s": result["instances"] / seconds,
                "primary": result["primary"],
            }
        entry["outputs_identical"] = texts[1] == texts[8]
        entry["max_gen_toks"] = gen_toks
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
    parser.add_argument("--gen-limit", type=int, default=8)
    parser.add_argument("--gen-toks", type=int, default=64)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "eval.json")
    args = parser.parse_args()

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
        gen = generative(model, tmp, args.gen_limit, args.gen_toks)
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
        "versions": r_bs1["harness"]["versions"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(dump_json(report), encoding="utf-8")
    print(json.dumps(report, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
