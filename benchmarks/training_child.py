"""One variant of one training job in its own process (benchmarks/training.py starts it).

    python benchmarks/training_child.py --job JOB.json --variant stage|bare --result OUT.json
        [--profile STATS]

``JOB.json``: ``{"stage", "config", "inputs": {name: dir}}``. Pins threads and seeds as the runner
does (``reprolm.runner.pin_threads_and_seeds``), then runs ``stages.<stage>.stage.run`` into a
temp output dir (``stage``) or ``benchmarks.training_bare`` (``bare``). ``Trainer.train`` is
wrapped by a probe for both variants alike: its wall time, and the tokens of every forward pass
that builds a graph (attention-mask sum, else input ids; reference, generation and evaluation
passes run without grad and are not counted). Writes call/train wall and CPU seconds, tokens,
the logged losses, the trainer's arguments and this process's CPU seconds and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

STARTED = time.perf_counter()
# Trainer arguments that name places or differ by design between the two variants.
_UNCOMPARED_ARGS = ("output_dir", "logging_dir")
TRL_CLASSES = {
    "sft": ("SFTConfig", "SFTTrainer"),
    "dpo": ("DPOConfig", "DPOTrainer"),
    "rlvr": ("GRPOConfig", "GRPOTrainer"),
}


class Probe:
    """Wall time of the training loop and the tokens its forward passes train on."""

    def __init__(self) -> None:
        self.train_s = 0.0
        self.train_cpu_s = 0.0
        self.tokens = 0
        self.args: dict[str, Any] | None = None

    def _count(self, module: Any, args: tuple, kwargs: dict) -> None:
        import torch

        if not torch.is_grad_enabled():
            return
        mask = kwargs.get("attention_mask")
        ids = kwargs.get("input_ids", args[0] if args else None)
        self.tokens += int(mask.sum()) if mask is not None else int(ids.numel())

    @contextmanager
    def training(self, model: Any):
        handle = model.register_forward_pre_hook(self._count, with_kwargs=True)
        start, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.train_s += time.perf_counter() - start
            self.train_cpu_s += time.process_time() - cpu
            handle.remove()

    def wrap_trainer(self) -> None:
        """Time ``transformers.Trainer.train`` (every TRL trainer's too) and record its args."""
        from transformers import Trainer

        original = Trainer.train
        probe = self

        def train(trainer, *args, **kwargs):
            probe.args = {
                k: v for k, v in trainer.args.to_dict().items() if k not in _UNCOMPARED_ARGS
            }
            with probe.training(trainer.model):
                result = original(trainer, *args, **kwargs)
            probe.losses = [float(e["loss"]) for e in trainer.state.log_history if "loss" in e]
            return result

        Trainer.train = train


def run_variant(job: dict[str, Any], variant: str, probe: Probe, scratch: Path) -> list[float]:
    """Train once; return the logged losses."""
    if variant == "stage":
        import importlib

        from stages.common.job import JobContext, as_inputs

        run = importlib.import_module(f"stages.{job['stage']}.stage").run  # imported already
        output = scratch / "artifact"
        output.mkdir()
        metrics = run(dict(job["config"]), as_inputs(job["inputs"]), output, JobContext())
        del metrics
        return getattr(probe, "losses", [])
    from training_bare import BARE

    inputs = {name: Path(path) for name, path in job["inputs"].items()}
    trainer_dir = scratch / "trainer"
    trainer_dir.mkdir()
    return BARE[job["stage"]](job["config"], inputs, trainer_dir, probe)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job", type=Path, required=True)
    parser.add_argument("--variant", choices=("stage", "bare"), required=True)
    parser.add_argument("--result", type=Path, required=True)
    parser.add_argument("--profile", type=Path, help="write cProfile stats of the call here")
    args = parser.parse_args()
    job = json.loads(args.job.read_text("utf-8"))
    from reprolm.runner import pin_threads_and_seeds

    pin_threads_and_seeds(job["config"]["threads"], job["config"]["seed"], uses_torch=True)
    # Imports before the timed call, the same for both variants: torch, transformers, TRL and
    # the stage's module (the bare variants build their model and data with its helpers).
    # (transformers and TRL load lazily: their classes are touched here).
    import importlib

    import datasets  # noqa: F401
    import transformers
    import trl

    for name in ("Trainer", "TrainingArguments", "AutoModelForCausalLM", "get_scheduler"):
        getattr(transformers, name)
    for name in TRL_CLASSES.get(job["stage"], ()):
        getattr(trl, name)
    importlib.import_module(f"stages.{job['stage']}.stage")
    import training_bare  # noqa: F401

    probe = Probe()
    probe.wrap_trainer()
    imported_s = time.perf_counter() - STARTED
    with tempfile.TemporaryDirectory(prefix="reprolm-bench-train-") as scratch:
        profiler = None
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        start, cpu = time.perf_counter(), time.process_time()
        losses = run_variant(job, args.variant, probe, Path(scratch))
        call_s, call_cpu_s = time.perf_counter() - start, time.process_time() - cpu
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(args.profile))
    result = {
        "stage": job["stage"],
        "variant": args.variant,
        "import_s": imported_s,
        "call_s": call_s,
        "train_s": probe.train_s,
        "call_cpu_s": call_cpu_s,
        "train_cpu_s": probe.train_cpu_s,
        "process_cpu_s": time.process_time(),
        "tokens": probe.tokens,
        "losses": losses,
        "trainer_args": probe.args,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    args.result.write_text(json.dumps(result, default=str), "utf-8")


if __name__ == "__main__":
    sys.exit(main())
