"""Does an rc score change with the batch size? Log-likelihoods per batch size, device and dtype.

lm-eval users report scores that move with the batch size: a batch pads its rows, and padded
matrix products can round differently from unpadded ones (GPU kernels pick other algorithms for
other shapes). This runs the project's ``arc_easy:rc::olmes`` spec (engine: lm-eval, HF backend)
on one random OLMo 2 at several batch sizes and reports, per (device, dtype): requests/s, the
largest |Δ log-likelihood| against batch size 1, how many instances change their argmax under
each normalization, and whether the metrics are equal.

Data: an ARC-format set built from the GSM8K fixture (each question with its gold number and
three other items' numbers as choices), so there are enough requests to time.

    python benchmarks/eval_batch_invariance.py --device cpu --dtype float32 --hidden 64
    python benchmarks/eval_batch_invariance.py --device cuda --dtype float32 bfloat16

Writes JSON to benchmarks/results/eval-batch-invariance-<device>.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evals import gsm8k, lmeval, sources  # noqa: E402
from evals.multiple_choice import evaluate_mc  # noqa: E402
from evals.registry import get_spec  # noqa: E402
from reprolm.canonical import dump_json  # noqa: E402
from tests.evals.conftest import GSM8K_TEST, build_tiny_model  # noqa: E402

TASK = "arc_easy:rc::olmes"


def arc_from_gsm8k(dest: Path, n: int) -> Path:
    """``n`` ARC-format items: a GSM8K question, its gold number and three distractor numbers."""
    rows = sources.read_jsonl(GSM8K_TEST)[:n]
    golds = [gsm8k.gold_answer(r["answer"]) for r in rows]
    rng = random.Random(0)
    with open(dest, "w", encoding="utf-8") as out:
        for i, row in enumerate(rows):
            others = rng.sample([g for g in golds if g != golds[i]], 3)
            choices = [golds[i], *others]
            rng.shuffle(choices)
            item = {
                "id": f"gsm8k-{i}",
                "question": row["question"],
                "choices": {"text": choices, "label": list("ABCD")},
                "answerKey": "ABCD"[choices.index(golds[i])],
            }
            out.write(json.dumps(item) + "\n")
    return dest


def resize(model_dir: Path, hidden: int, layers: int) -> None:
    """Replace the tiny model's weights by a random OLMo 2 of the given width and depth."""
    import torch
    from transformers import Olmo2Config, Olmo2ForCausalLM

    cfg = Olmo2Config.from_pretrained(model_dir)
    cfg.hidden_size, cfg.num_hidden_layers = hidden, layers
    cfg.intermediate_size, cfg.num_attention_heads = 4 * hidden, max(4, hidden // 64)
    cfg.num_key_value_heads = cfg.num_attention_heads
    torch.manual_seed(0)
    Olmo2ForCausalLM(cfg).save_pretrained(model_dir)


def logliks(out_dir: Path, field: str = "loglik") -> list[list[float]]:
    """Per instance, each choice's ``loglik`` (or ``uncond_loglik``, the PMI term)."""
    rows = sources.read_jsonl(out_dir / "predictions.jsonl")
    return [[c[field] for c in r["choices"]] for r in rows]


def max_diff(out_dir: Path, ref_dir: Path, field: str) -> float:
    pairs = zip(logliks(out_dir, field), logliks(ref_dir, field), strict=True)
    return max(abs(x - y) for a, b in pairs for x, y in zip(a, b, strict=True))


def argmax_changes(out_dir: Path, ref_dir: Path) -> dict[str, int]:
    """Instances whose chosen answer differs from the reference, per normalization."""
    from evals.metrics import predicted

    a = sources.read_jsonl(out_dir / "predictions.jsonl")
    b = sources.read_jsonl(ref_dir / "predictions.jsonl")
    return {
        norm: sum(predicted(x, norm) != predicted(y, norm) for x, y in zip(a, b, strict=True))
        for norm in ("raw", "per_token", "per_char", "uncond")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", nargs="+", default=["float32"])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--items", type=int, default=150)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    spec = get_spec(TASK)
    tmp = Path(tempfile.mkdtemp(prefix="reprolm-bench-batch-"))
    runs: dict[str, dict] = {}
    try:
        model = build_tiny_model(tmp / "model")
        resize(model, args.hidden, args.layers)
        data = arc_from_gsm8k(tmp / "arc.jsonl", args.items)
        for dtype in args.dtype:
            ref_dir = None
            for bs in args.batch_sizes:
                lm = lmeval.load_model(model, bs, device=args.device, dtype=dtype)
                out = tmp / f"{dtype}-bs{bs}"
                evaluate_mc(spec, model, data, out, batch_size=bs, lm=lm)  # warm-up
                shutil.rmtree(out)
                start = time.perf_counter()
                result = evaluate_mc(spec, model, data, out, batch_size=bs, lm=lm)
                seconds = time.perf_counter() - start
                n_req = sum(2 * len(r) for r in logliks(out))  # conditional + PMI
                run = {"seconds": seconds, "requests": n_req, "req_per_s": n_req / seconds}
                run["metrics"] = result["metrics"]
                if ref_dir is None:
                    ref_dir = out
                else:
                    run["max_abs_loglik_diff_vs_bs1"] = max_diff(out, ref_dir, "loglik")
                    run["max_abs_uncond_loglik_diff_vs_bs1"] = max_diff(
                        out, ref_dir, "uncond_loglik"
                    )
                    run["argmax_changes_vs_bs1"] = argmax_changes(out, ref_dir)
                    ref = runs[f"{dtype}/bs{args.batch_sizes[0]}"]["metrics"]
                    run["metrics_equal_bs1"] = result["metrics"] == ref
                runs[f"{dtype}/bs{bs}"] = run
                del lm
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    device_name = (
        torch.cuda.get_device_name(0) if args.device.startswith("cuda") else platform.processor()
    )
    report = {
        "task": TASK,
        "items": args.items,
        "model": f"random Olmo2 hidden {args.hidden} x {args.layers} layers, BPE vocab 400",
        "device": args.device,
        "device_name": device_name,
        "threads": args.threads,
        "torch": torch.__version__,
        "runs": runs,
    }
    out = args.out or ROOT / "benchmarks" / "results" / f"eval-batch-invariance-{args.device}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dump_json(report), encoding="utf-8")
    print(json.dumps(report, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
