"""One pretrain job under several placements: plain fp32, bf16, bf16 + DeepSpeed ZeRO-2.

Runs world -> evaldata -> curate -> tokenize of a recipe once (through the runner, as the rules
call it), then the recipe's pretrain job through ``reprolm.launch`` under each placement, twice,
and reports per placement: wall seconds of the job, the first/last logged loss, the payload
digest of each run and whether the two runs are bitwise equal. On a GPU machine this is the
check that the generated DeepSpeed config trains on real hardware (bf16 needs no CUDA-only op:
``torch_adam`` is not needed, the Trainer's AdamW is used). Single-process DeepSpeed gets the
environment torchrun would give it (RANK=0, WORLD_SIZE=1, ...).

    python benchmarks/pretrain_placement.py --recipe config/tiny.yaml --workdir /tmp/pp

Writes JSON to benchmarks/results/pretrain-placement-<device>.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reprolm.canonical import dump_json  # noqa: E402
from reprolm.fingerprint import fingerprint  # noqa: E402
from reprolm.manifest import MANIFEST_NAME  # noqa: E402
from reprolm.plan import load_plan  # noqa: E402
from tests.support import make_checkout  # noqa: E402

SINGLE_PROCESS_DIST = {
    "RANK": "0",
    "LOCAL_RANK": "0",
    "WORLD_SIZE": "1",
    "LOCAL_WORLD_SIZE": "1",
    "MASTER_ADDR": "127.0.0.1",
    "MASTER_PORT": "29511",
}
PLACEMENTS = {
    "fp32": ({}, "none"),
    "bf16": ({"precision": "bf16"}, "none"),
    "bf16_zero2": ({"precision": "bf16"}, "zero2"),
}


def stage_argv(work: Path, stage: str, config: dict, inputs: dict[str, str], label: str):
    """``(argv after -m, artifact dir)`` of a job, as the rules build it."""
    input_fps = {
        name: json.loads((work / path / MANIFEST_NAME).read_text())["fingerprint"]
        for name, path in inputs.items()
    }
    output = f"artifacts/{stage}/{label}-{fingerprint(stage, config, input_fps)}"
    argv = ["--config-json", json.dumps(config, sort_keys=True)]
    for name, path in inputs.items():
        argv += ["--input", f"{name}={path}"]
    return [*argv, "--output", output], work / output


def run(argv: list[str], work: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(argv[:6])} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
        )
    return time.perf_counter() - started


def losses(artifact: Path) -> list[float]:
    history = json.loads((artifact / "training" / "log_history.json").read_text())
    return [row["loss"] for row in history if "loss" in row]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipe", default="config/micro.yaml")
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--placements", nargs="+", default=list(PLACEMENTS))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    import torch

    work = make_checkout(args.workdir)
    env = {**os.environ, "PYTHONPATH": str(work), "REPROLM_MLFLOW": "off"}
    plan = load_plan(work / args.recipe)
    for stage in ("world", "evaldata", "curate", "tokenize"):
        job = plan.get(stage, stage)
        argv, _ = stage_argv(work, stage, job.config, plan.input_dirs(job), stage)
        run([sys.executable, "-m", f"stages.{stage}", *argv], work, env)

    job = plan.get("pretrain", "pretrain")
    report: dict = {}
    for name in args.placements:
        extra, deepspeed = PLACEMENTS[name]
        config = {**job.config, **extra}
        runs = []
        for repeat in range(args.repeats):
            label = f"{name}{repeat}"
            argv, artifact = stage_argv(work, "pretrain", config, plan.input_dirs(job), label)
            launch = [sys.executable, "-m", "reprolm.launch", "--deepspeed", deepspeed, "--"]
            job_env = {**env, **(SINGLE_PROCESS_DIST if deepspeed != "none" else {})}
            seconds = run([*launch, "stages.pretrain", *argv], work, job_env)
            manifest = json.loads((artifact / MANIFEST_NAME).read_text())
            loss = losses(artifact)
            runs.append(
                {
                    "seconds": seconds,
                    "digest": manifest["digest"],
                    "first_loss": loss[0],
                    "last_loss": loss[-1],
                    "job_wall_s": manifest["execution"].get("wall_seconds"),
                }
            )
        report[name] = {
            "steps": config["steps"],
            "runs": runs,
            "bitwise_equal": len({r["digest"] for r in runs}) == 1,
        }

    cuda = torch.cuda.is_available()
    result = {
        "recipe": args.recipe,
        "device": torch.cuda.get_device_name(0) if cuda else platform.processor() or "cpu",
        "torch": torch.__version__,
        "placements": report,
    }
    out = args.out or ROOT / "benchmarks" / "results" / (
        f"pretrain-placement-{'cuda' if cuda else 'cpu'}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dump_json(result), encoding="utf-8")
    print(json.dumps(result, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
