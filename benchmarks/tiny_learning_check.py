"""Does the tiny recipe learn? Chain world → … → rlvr and score held-out arith_gen after each.

A quick, self-contained check (the real evaluation is ``stages.evaluate`` with lm-eval): greedy
generation with HF ``generate``, prompts formatted like the evaluate stage's task pack (plain
``Question: …\\nAnswer:`` for pretrain, the chat template for post-trained checkpoints), the
response cut at the first newline and scored with the ``numeric_answer`` verifier.

    .venv/bin/python benchmarks/tiny_learning_check.py --threads 2 [--work DIR] [--set sft.steps=9]
"""

from __future__ import annotations

import argparse
import importlib
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evals.verifiers import get_verifier  # noqa: E402
from reprolm.recipe import validate_stage_config  # noqa: E402
from reprolm.stagetable import CHECKPOINT_STAGES  # noqa: E402
from stages.common.job import JobContext, as_inputs  # noqa: E402

CHAIN = {  # stage -> inputs (name -> upstream stage)
    "world": {},
    "curate": {"world": "world"},
    "tokenize": {"curate": "curate"},
    "pretrain": {"tokenize": "tokenize"},
    "sft": {"model": "pretrain", "data": "curate"},
    "dpo": {"model": "sft", "data": "curate"},
    "rlvr": {"model": "dpo", "data": "curate"},
}
CHECKPOINTS = CHECKPOINT_STAGES
PROMPT = "Question: {question}\nAnswer:"


def run_stage(stage: str, config: dict, inputs: dict[str, Path], out: Path) -> tuple[dict, float]:
    """Seed and pin threads like reprolm.runner, run the stage, return (metrics, seconds)."""
    import numpy as np
    import torch

    random.seed(config["seed"])
    np.random.seed(config["seed"])
    torch.manual_seed(config["seed"])
    torch.set_num_threads(config["threads"])
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    run = importlib.import_module(f"stages.{stage}.stage").run
    start = time.perf_counter()
    metrics = run(config, as_inputs(inputs), out, JobContext()) or {}
    return metrics, time.perf_counter() - start


def exact_match(
    artifact: Path, world: Path, chat: bool, template: str = PROMPT, max_new_tokens: int = 32
) -> float:
    """Greedy arith_gen exact match of a checkpoint (numeric_answer on the first line)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(artifact / "model"))
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(str(artifact / "model")).eval()
    rows = [json.loads(line) for line in (world / "eval/arith_gen.jsonl").open(encoding="utf-8")]
    prompts = []
    for row in rows:
        text = template.format(question=row["question"])
        if chat:
            text = tokenizer.apply_chat_template(
                [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
            )
        prompts.append(text)
    verify = get_verifier("numeric_answer")
    score = 0.0
    for start in range(0, len(rows), 50):
        batch = tokenizer(prompts[start : start + 50], return_tensors="pt", padding=True)
        with torch.no_grad():
            out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False)
        generated = out[:, batch["input_ids"].shape[1] :]
        for row, ids in zip(rows[start : start + 50], generated, strict=True):
            response = tokenizer.decode(ids, skip_special_tokens=True).split("\n")[0]
            score += verify(response, row["answer"])
    return score / len(rows)


def parse_overrides(pairs: list[str]) -> dict[str, dict[str, Any]]:
    """``stage.key=value`` (dots for nested keys; the value is parsed as YAML)."""
    overrides: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        path, _, value = pair.partition("=")
        stage, *keys = path.split(".")
        target = overrides.setdefault(stage, {})
        for key in keys[:-1]:
            target = target.setdefault(key, {})
        target[keys[-1]] = yaml.safe_load(value)
    return overrides


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--work", type=Path, default=None, help="keep artifacts here")
    parser.add_argument("--set", action="append", default=[], help="stage.key=value override")
    parser.add_argument("--reuse", action="append", default=[], help="stage whose artifact to keep")
    parser.add_argument("--stop-after", choices=list(CHAIN), default="rlvr", help="last stage")
    args = parser.parse_args()
    overrides = parse_overrides(args.set)
    work = args.work or Path(tempfile.mkdtemp(prefix="tiny-learning-"))
    artifacts: dict[str, Path] = {}
    report: dict[str, Any] = {}
    for stage, needs in CHAIN.items():
        config = validate_stage_config(
            stage, {"seed": args.seed, "threads": args.threads, **overrides.get(stage, {})}
        )
        out = work / stage
        artifacts[stage] = out
        if stage in args.reuse and out.exists():
            summary = out / "training" / "summary.json"
            if summary.is_file():
                report[stage] = json.loads(summary.read_text("utf-8"))
            print(f"{stage:9s} reused {out}", flush=True)
            continue
        inputs = {name: artifacts[upstream] for name, upstream in needs.items()}
        metrics, seconds = run_stage(stage, config, inputs, out)
        report[stage] = {"seconds": round(seconds, 1), **metrics}
        print(f"{stage:9s} {seconds:6.1f} s  {json.dumps(metrics, sort_keys=True)}", flush=True)
        if stage == args.stop_after:
            break
    checkpoints = [stage for stage in CHECKPOINTS if stage in artifacts]
    for stage in checkpoints:
        chat = stage != "pretrain"
        scores = report.setdefault(stage, {})
        scores["arith_gen_exact_match"] = exact_match(artifacts[stage], artifacts["world"], chat)
        # Chat checkpoints also with the bare question as the user turn (the SFT data's format).
        if chat:
            scores["arith_gen_exact_match_bare"] = exact_match(
                artifacts[stage], artifacts["world"], chat, template="{question}"
            )
    print("\narith_gen exact match (greedy, held-out questions):")
    print("  checkpoint  'Question: q\\nAnswer:' (evaluate pack)  bare question as user turn")
    for stage in checkpoints:
        bare = report[stage].get("arith_gen_exact_match_bare")
        bare_text = "-" if bare is None else f"{bare:.2f}"
        print(f"  {stage:9s}  {report[stage]['arith_gen_exact_match']:.2f}  {bare_text:>40s}")
    dpo, rlvr = report.get("dpo", {}), report.get("rlvr", {})
    if dpo:
        print(
            "DPO reward margin: start {margin_start:.3f} -> end {margin_end:.3f} "
            "(first/last quarter {margin_first_quarter:.3f} -> {margin_last_quarter:.3f}), "
            "reward accuracy end {accuracy_end:.2f}, held-out probe margin "
            "{probe_margin_end:.3f} accuracy {probe_accuracy_end:.2f}".format(**dpo)
        )
    if rlvr:
        print(
            "RLVR mean reward: start {reward_start:.3f} -> end {reward_end:.3f} "
            "(first/last quarter {reward_first_quarter:.3f} -> {reward_last_quarter:.3f})".format(
                **rlvr
            )
        )
    (work / "learning_report.json").write_text(json.dumps(report, sort_keys=True, indent=2))
    print(f"artifacts and learning_report.json in {work}")


if __name__ == "__main__":
    main()
