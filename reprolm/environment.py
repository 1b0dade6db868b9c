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

from reprolm import numerics
from reprolm.hashing import hash_bytes, hash_file
from reprolm.saveddiff import scrub_diff

KEY_PACKAGES = (
    "torch", "transformers", "trl", "datasets", "accelerate", "tokenizers", "safetensors",
    "lm_eval", "numpy", "snakemake", "deepspeed", "vllm", "reprolm",
)  # fmt: skip
# Only these variables are ever recorded (they change numerics or parallelism, never secrets).
ENV_ALLOW_LIST = (
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
    "RAYON_NUM_THREADS", "TOKENIZERS_PARALLELISM", "CUBLAS_WORKSPACE_CONFIG", "PYTHONHASHSEED",
    "OPENBLAS_CORETYPE", "CUDA_VISIBLE_DEVICES", "SLURM_JOB_ID", "WORLD_SIZE",
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


def git_state(cwd: Path | None = None, diff_dir: Path | None = None) -> dict[str, Any]:
    """Commit, dirty flag and diff hash of the code's git checkout (None when not in one).

    A dirty tree is recorded, never hidden: the hash of the saved form of ``git diff HEAD``
    names the uncommitted change, and with ``diff_dir`` that diff is saved there as
    ``<hash>.patch`` so ``reprolm rebuild`` can re-create the tree. Credentials are taken out
    first (``reprolm.saveddiff``) and the hash is over the saved text, so it cannot be used to
    guess a secret that was taken out.
    """

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=20, check=True,
                errors="surrogateescape",  # a diff may hold any bytes; they are saved as they are
            )  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip()

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    state: dict[str, Any] = {
        "commit": commit,
        "dirty": bool(status) if status is not None else None,
        "diff_hash": None,
    }
    if state["dirty"]:
        diff = git("diff", "HEAD", "--binary")
        if diff is not None:
            patch = (scrub_diff(diff).text + "\n").encode("utf-8", "surrogateescape")
            state["diff_hash"] = hash_bytes(patch)
            if diff_dir is not None:
                diff_dir.mkdir(parents=True, exist_ok=True)
                (diff_dir / f"{state['diff_hash']}.patch").write_bytes(patch)
    return state


def package_set_hash() -> str:
    """blake3 over the sorted ``name==version`` lines of every installed distribution."""
    lines = sorted(
        f"{(dist.metadata['Name'] or '').lower()}=={dist.version}"
        for dist in metadata.distributions()
    )
    return hash_bytes("\n".join(lines).encode("utf-8"))


def file_hash(path: Path) -> str | None:
    """blake3 of a file (e.g. the lock file), None when absent."""
    return hash_file(path) if path.is_file() else None


def container_image() -> dict[str, Any] | None:
    """The container image a job runs in (``reprolm.containers.current_image``), None on the
    host. Recorded in the environment block only: no payload digest depends on it."""
    from reprolm.containers import current_image

    return current_image()


def accelerators() -> dict[str, Any]:
    """GPU model, count, driver-side CUDA version; empty when no GPU (only if torch is loaded)."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return {}
    return {
        "gpu_model": torch.cuda.get_device_name(0),
        "gpu_count": torch.cuda.device_count(),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
    }


def capture(threads: int, lock_file: Path | None = None) -> dict[str, Any]:
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
        "package_set_hash": package_set_hash(),
        "lock_file_hash": file_hash(lock_file) if lock_file else None,
        "container_image": container_image(),
        "accelerators": accelerators(),
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
        "numerics": numerics.capture(),
        "env": {name: os.environ[name] for name in ENV_ALLOW_LIST if name in os.environ},
    }
