"""What a job ran on: interpreter, key packages, machine, git state, thread settings.

Environment variables are captured through an allow-list only, so a token or password in the
job's environment can never reach a manifest.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

KEY_PACKAGES = (
    "torch", "transformers", "trl", "datasets", "accelerate", "tokenizers", "safetensors",
    "lm_eval", "numpy", "snakemake", "deepspeed", "vllm", "reprolm",
)  # fmt: skip
# Only these variables are ever recorded (they change numerics or parallelism, never secrets).
ENV_ALLOW_LIST = (
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
    "RAYON_NUM_THREADS", "TOKENIZERS_PARALLELISM", "CUBLAS_WORKSPACE_CONFIG", "PYTHONHASHSEED",
    "OPENBLAS_CORETYPE", "CUDA_VISIBLE_DEVICES", "SLURM_JOB_ID",
)  # fmt: skip


def package_versions(names: tuple[str, ...] = KEY_PACKAGES) -> dict[str, str | None]:
    """Installed version of each key package (None when absent)."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name.replace("_", "-"))
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo, else platform.processor()."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_state(cwd: Path | None = None) -> dict[str, Any]:
    """Commit and dirty flag of the working tree (None when not in a git checkout)."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=20, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": bool(status) if status is not None else None}


def capture(threads: int) -> dict[str, Any]:
    """The environment block of a manifest."""
    return {
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "host": socket.gethostname(),
        "threads": threads,
        "packages": package_versions(),
        "env": {name: os.environ[name] for name in ENV_ALLOW_LIST if name in os.environ},
    }
