"""GPU readiness check: the project's own pretrain and SFT stages on one device, no network.

On one CUDA GPU (``--device cuda``, the default when one is visible) this:

* measures the device's dense matmul rate (bf16 and fp32, square ``--matmul-n`` products): the
  denominator of model FLOPs utilization;
* builds a small world, curates and tokenizes it (the micro recipe's stages; seconds), then runs
  the ``pretrain`` stage on a ~100M-parameter OLMo 2 (hidden 768, 12 layers, 12 heads, MLP 3072)
  in bf16, twice with the same seed, and the ``sft`` stage on that checkpoint, twice;
* reports tokens/s and MFU of each stage (model FLOPs per token = 6 x the parameters that
  matmul, plus attention's 12 x layers x hidden x sequence length; time = the whole stage call,
  so model build and save are in it), and the run-to-run digests of the saved weights and the
  largest loss difference: what the stages' declared reproducibility level on a GPU rests on;
* runs ``benchmarks/eval_batch_invariance.py`` (an rc spec at batch sizes 1, 8, 32; float32
  and bfloat16) on the same device.

``--device cpu`` runs the same path on a micro model (hidden 64, 2 layers) in seconds: CI's
smoke test that the script, the stages' bf16 path and the JSON are intact. Writes
``benchmarks/results/gpu-check-<device>.json`` (or ``--output``).

    bash benchmarks/gpu_check.sh                 # on the GPU machine
    bash benchmarks/gpu_check.sh --device cpu    # smoke test (CI)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reprolm.canonical import dump_json  # noqa: E402
from reprolm.environment import cpu_model  # noqa: E402
from reprolm.recipe import validate_stage_config  # noqa: E402
from tests.stages.micro import MICRO_CONFIGS, run_stage  # noqa: E402

# (model block, seq_len, batch, pretrain steps, sft steps, tokenizer vocab) per size.
SIZES: dict[str, dict[str, Any]] = {
    "100m": {
        "model": {"hidden_size": 768, "num_layers": 12, "num_heads": 12, "intermediate_size": 3072},
        "seq_len": 1024, "batch": 16, "steps": 60, "sft_steps": 30, "vocab": 2048,
    },
    "micro": {
        "model": {"hidden_size": 64, "num_layers": 2, "num_heads": 4, "intermediate_size": 128},
        "seq_len": 64, "batch": 4, "steps": 6, "sft_steps": 4, "vocab": 512,
    },
}  # fmt: skip


def matmul_rate(device: str, dtype_name: str, n: int, repeats: int = 10) -> dict[str, float]:
    """Best-of-``repeats`` TFLOP/s of an n x n x n product (2 n^3 FLOPs)."""
    import torch

    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[dtype_name]
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(repeats + 1):  # the first one warms up
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        (a @ b).sum().item()
        best = min(best, time.perf_counter() - start)
    return {"n": n, "seconds": best, "tflops": 2 * n**3 / best / 1e12}


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def weights_digest(artifact: Path) -> str:
    """sha256 over the saved weight files (model/*.safetensors, sorted)."""
    digest = hashlib.sha256()
    for path in sorted((artifact / "model").glob("*.safetensors")):
        digest.update(path.name.encode() + b"\0" + file_sha256(path).encode())
    return digest.hexdigest()


def losses(artifact: Path) -> list[float]:
    history = json.loads((artifact / "training" / "log_history.json").read_text())
    return [float(e["loss"]) for e in history if "loss" in e]


def model_flops_per_token(config: dict[str, Any], vocab: int, seq_len: int) -> float:
    """6 x matmul parameters (attention, MLP, LM head) + 12 x layers x hidden x seq_len."""
    m = config["model"]
    d, layers, mlp = m["hidden_size"], m["num_layers"], m["intermediate_size"]
    per_layer = 4 * d * d + 3 * d * mlp  # q, k, v, o + gate, up, down (no GQA in this shape)
    matmul_params = layers * per_layer + d * vocab  # + LM head
    return 6 * matmul_params + 12 * layers * d * seq_len


def timed_stage(stage: str, config: dict, inputs: dict[str, Path], out: Path) -> dict[str, Any]:
    start = time.perf_counter()
    summary = run_stage(stage, config, inputs, out)
    return {"seconds": time.perf_counter() - start, "summary": summary}


def data_artifacts(work: Path, size: dict[str, Any], windows_needed: int) -> dict[str, Path]:
    """world -> curate -> tokenize (micro world; tokenize cut to the size's sequence length,
    with enough epochs for the pretraining steps)."""
    world, curate, tokenize = work / "world", work / "curate", work / "tokenize"
    run_stage("world", MICRO_CONFIGS["world"], {}, world)
    run_stage("curate", MICRO_CONFIGS["curate"], {"world": world}, curate)
    base = {
        **MICRO_CONFIGS["tokenize"], "seq_len": size["seq_len"], "vocab_size": size["vocab"],
        "model_max_length": max(size["seq_len"], 512),
    }  # fmt: skip
    run_stage("tokenize", base | {"epochs": 1}, {"curate": curate}, work / "tokenize-probe")
    index = json.loads((work / "tokenize-probe" / "shards" / "index.json").read_text())
    epochs = max(1, -(-windows_needed // max(1, index["order"]["windows"])))
    run_stage("tokenize", base | {"epochs": epochs}, {"curate": curate}, tokenize)
    return {"curate": curate, "tokenize": tokenize}


def training_configs(size: dict[str, Any], precision: str) -> tuple[dict, dict]:
    pretrain = validate_stage_config(
        "pretrain",
        {
            "model": {
                **size["model"], "num_kv_heads": size["model"]["num_heads"],
                "max_position_embeddings": max(size["seq_len"], 512),
            },
            "seq_len": size["seq_len"], "batch_size": size["batch"],
            "steps": size["steps"], "warmup_steps": 2, "logging_steps": 2,
            "precision": precision, "seed": 7, "threads": 1,
        },
    )  # fmt: skip
    sft = validate_stage_config(
        "sft",
        {
            "max_length": min(512, size["seq_len"]), "batch_size": size["batch"],
            "steps": size["sft_steps"], "warmup_steps": 1, "logging_steps": 2,
            "precision": precision, "seed": 7, "threads": 1,
        },
    )  # fmt: skip
    return pretrain, sft


def run_twice(
    stage: str, config: dict, inputs: dict[str, Path], work: Path, tokens: int, flops: float,
    peak_tflops: float,
) -> dict[str, Any]:  # fmt: skip
    """The stage twice with one seed: speed of the faster run, digests and loss gap of both."""
    runs = [timed_stage(stage, config, inputs, work / f"{stage}-{i}") for i in (1, 2)]
    seconds = min(r["seconds"] for r in runs)
    a, b = (losses(work / f"{stage}-{i}") for i in (1, 2))
    digests = [weights_digest(work / f"{stage}-{i}") for i in (1, 2)]
    return {
        "seconds": seconds,
        "tokens": tokens,
        "tokens_per_s": tokens / seconds,
        "model_flops_per_token": flops,
        "mfu_vs_measured_bf16_matmul": tokens * flops / seconds / (peak_tflops * 1e12),
        "weights_sha256": digests,
        "bitwise_run_to_run": digests[0] == digests[1],
        "max_abs_loss_diff": max((abs(x - y) for x, y in zip(a, b, strict=True)), default=0.0),
        "losses": a,
    }


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default=None)
    parser.add_argument("--size", choices=sorted(SIZES), default=None)
    parser.add_argument("--matmul-n", type=int, default=None)
    parser.add_argument("--skip-eval", action="store_true", help="no batch-invariance run")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_check: --device cuda but torch sees no CUDA device")
    size_name = args.size or ("100m" if device == "cuda" else "micro")
    size = SIZES[size_name]
    out_path = args.output or ROOT / "benchmarks" / "results" / f"gpu-check-{device}.json"
    torch.set_num_threads(1)
    n = args.matmul_n or (8192 if device == "cuda" else 256)
    rates = {name: matmul_rate(device, name, n) for name in ("bf16", "fp32")}
    peak = rates["bf16"]["tflops"]
    result: dict[str, Any] = {
        "benchmark": "gpu_check",
        "device": device,
        "size": size_name,
        "machine": {
            "cpu": cpu_model(), "python": platform.python_version(), "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
            "cuda": torch.version.cuda,
        },
        "matmul": rates,
    }  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        data = data_artifacts(work, size, size["steps"] * size["batch"])
        result["data_seconds"] = time.perf_counter() - started
        pretrain, sft = training_configs(size, "bf16")
        vocab = json.loads((data["tokenize"] / "tokenizer" / "tokenizer.json").read_text())
        vocab_size = len(vocab["model"]["vocab"]) + len(vocab.get("added_tokens", []))
        flops = model_flops_per_token(pretrain, vocab_size, size["seq_len"])
        tokens = size["steps"] * size["batch"] * size["seq_len"]
        result["pretrain"] = run_twice(
            "pretrain", pretrain, {"tokenize": data["tokenize"]}, work, tokens, flops, peak
        )
        result["pretrain"]["parameters"] = json.loads(
            (work / "pretrain-1" / "training" / "summary.json").read_text()
        ).get("parameters")
        sft_tokens = size["sft_steps"] * size["batch"] * sft["max_length"]  # an upper bound
        result["sft"] = run_twice(
            "sft", sft, {"model": work / "pretrain-1", "data": data["curate"]}, work,
            sft_tokens, model_flops_per_token(pretrain, vocab_size, sft["max_length"]), peak,
        )  # fmt: skip
        result["sft"]["tokens_note"] = "steps x batch x max_length: an upper bound (padding)"
        if not args.skip_eval:
            result["eval_batch_invariance"] = eval_invariance(device, work)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(dump_json(result), encoding="utf-8")
    print(json.dumps({k: result[k] for k in ("device", "size", "matmul")}, indent=1))
    for stage in ("pretrain", "sft"):
        r = result[stage]
        print(
            f"{stage}: {r['tokens_per_s']:.0f} tokens/s, MFU {r['mfu_vs_measured_bf16_matmul']:.3f}"
            f", bitwise run-to-run {r['bitwise_run_to_run']}, max |dloss| {r['max_abs_loss_diff']}"
        )
    print(f"wrote {out_path}")


def eval_invariance(device: str, work: Path) -> dict[str, Any]:
    """benchmarks/eval_batch_invariance.py on this device (micro shape on CPU)."""
    out = work / "eval-batch-invariance.json"
    shape = (
        ["--hidden", "512", "--layers", "8", "--dtype", "float32", "bfloat16"]
        if device == "cuda"
        else ["--hidden", "64", "--layers", "2", "--items", "20", "--batch-sizes", "1", "8"]
    )
    command = [
        sys.executable, str(ROOT / "benchmarks" / "eval_batch_invariance.py"), "--device", device,
        *shape, "--out", str(out),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        return {"error": done.stderr[-2000:]}
    return json.loads(out.read_text())


if __name__ == "__main__":
    main()
