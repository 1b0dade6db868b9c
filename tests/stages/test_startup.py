"""Start-up imports avoided (stages.common.startup, the runner's determinism flags), with the
same answers as the libraries' own calls."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# The determinism state a fresh interpreter is left in after `setup`.
STATE = """
import json, os, sys
import torch
{setup}
loaded = sorted(m for m in ("torch._inductor", "torch._dynamo", "deepspeed") if m in sys.modules)
import torch._inductor.config as inductor
env = ("CUDA_LAUNCH_BLOCKING", "CUBLAS_WORKSPACE_CONFIG", "ASCEND_LAUNCH_BLOCKING",
       "HCCL_DETERMINISTIC", "FLASH_ATTENTION_DETERMINISTIC")
print(json.dumps({{
    "loaded": loaded,
    "deterministic": torch.are_deterministic_algorithms_enabled(),
    "warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
    "cudnn": [torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark],
    "inductor_deterministic": inductor.deterministic,
    "env": {{k: os.environ.get(k) for k in env}},
}}))
"""


def _state(setup: str) -> dict:
    code = STATE.format(setup=setup)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_runner_flags_match_torch_without_inductor():
    ours = _state(
        "from reprolm.runner import deterministic_algorithms\ndeterministic_algorithms(torch)"
    )
    theirs = _state("torch.use_deterministic_algorithms(True, warn_only=True)")
    assert ours["loaded"] == [] and "torch._inductor" in theirs["loaded"]
    for key in ("deterministic", "warn_only", "inductor_deterministic"):
        assert ours[key] == theirs[key]


def test_unwrap_model_answers_the_same_without_importing_deepspeed():
    assert importlib.util.find_spec("deepspeed") is not None, "the test extra installs deepspeed"
    code = (
        "import sys, torch\n"
        "from stages.common.startup import lazy_deepspeed_check\n"
        "lazy_deepspeed_check()\n"
        "from accelerate.utils.other import extract_model_from_parallel\n"
        "m = torch.nn.Linear(2, 2)\n"
        "print('unwrapped', extract_model_from_parallel(m) is m, 'deepspeed' in sys.modules)\n"
        "import deepspeed\n"
        "from accelerate.utils import other\n"
        "print('after import', other.is_deepspeed_available())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    lines = done.stdout.splitlines()  # DeepSpeed logs to stdout too
    assert "unwrapped True False" in lines  # the model itself, and DeepSpeed never imported
    assert "after import True" in lines  # once DeepSpeed is loaded, accelerate checks its engine


@pytest.mark.slow
def test_a_training_job_does_not_import_deepspeed(tmp_path, tokenize_artifact):
    """A whole micro pretrain job in a fresh interpreter, DeepSpeed installed: DeepSpeed is not
    imported, torch is in the Trainer's strict deterministic mode, the heap was frozen."""
    code = f"""
import json, sys
from pathlib import Path
from tests.stages.test_training import run_stage, stage_config
inputs = {{"tokenize": Path({str(tokenize_artifact)!r})}}
metrics = run_stage("pretrain", stage_config("pretrain"), inputs, Path({str(tmp_path / "out")!r}))
import torch
print(json.dumps({{
    "deepspeed": "deepspeed" in sys.modules,
    "frozen": __import__("gc").get_freeze_count(),
    "strict": torch.are_deterministic_algorithms_enabled()
              and not torch.is_deterministic_algorithms_warn_only_enabled(),
    "last_loss": metrics["last_loss"],
}}))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert not result["deepspeed"] and result["strict"] and result["frozen"] > 0
    assert result["last_loss"] > 0


def test_exit_without_teardown_runs_the_exit_handlers(tmp_path):
    """The exit handlers run (logging, MLflow, tempfile finalizers hang on them), buffered output
    is flushed, the exit status is 0, and nothing after the call runs."""
    marker = tmp_path / "handler-ran"
    code = (
        "import atexit, sys\n"
        "from pathlib import Path\n"
        "from reprolm.runner import exit_without_teardown\n"
        f"atexit.register(lambda: Path({str(marker)!r}).write_text('yes'))\n"
        "sys.stdout.write('buffered, no newline')\n"
        "exit_without_teardown()\n"
        "print('after')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0 and marker.read_text() == "yes"
    assert done.stdout == "buffered, no newline"
