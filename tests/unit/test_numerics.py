"""The numeric code path pin (reprolm.numerics) and its manifest record."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from reprolm import environment, numerics

ROOT = Path(__file__).resolve().parents[2]


def test_pin_overrides_user_values() -> None:
    env = {"ATEN_CPU_CAPABILITY": "avx512", "MKL_CBWR": "AUTO"}
    assert numerics.pin(env)
    assert env["ATEN_CPU_CAPABILITY"] == "avx2"
    assert env["MKL_CBWR"] == "AVX2,STRICT"
    assert env["ONEDNN_MAX_CPU_ISA"] == "AVX2"


def test_native_escape_leaves_the_environment() -> None:
    env = {"REPROLM_NUMERICS": "native", "ATEN_CPU_CAPABILITY": "avx512"}
    assert not numerics.pin(env)
    assert env["ATEN_CPU_CAPABILITY"] == "avx512"
    assert numerics.capture(env)["pinned"] is False


def test_runner_import_pins_before_torch_loads() -> None:
    code = (
        "import sys, json, reprolm.runner\n"
        "loaded = 'torch' in sys.modules\n"
        "import torch\n"
        "print(json.dumps([loaded, torch.backends.cpu.get_cpu_capability()]))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ATEN_CPU_CAPABILITY": "default"}
    env.pop("REPROLM_NUMERICS", None)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [False, "AVX2"]


def test_manifest_environment_records_numerics() -> None:
    block = environment.capture(1)["numerics"]
    assert set(block) >= {"pinned", "pinned_isa", "variables", "cpu_model", "cpu_flags", "blas"}
    assert "ATEN_CPU_CAPABILITY" in block["variables"]
    assert isinstance(block["cpu_flags"], dict)
