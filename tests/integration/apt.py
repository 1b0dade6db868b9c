"""Install Debian packages for a test harness (SLURM, podman) when their binaries are missing."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence


class AptUnavailable(RuntimeError):
    """The packages cannot be installed here (no apt-get, or no route to the Debian mirror)."""


def ensure_binaries(packages: Sequence[str], binaries: Sequence[str], timeout: float = 600) -> None:
    """``apt-get install packages`` unless every one of ``binaries`` is already on PATH.

    One harness installs at a time (a file lock): pytest-xdist workers start the SLURM and the
    podman harness side by side, and two apt-get runs fail on dpkg's lock."""
    from filelock import FileLock

    if all(shutil.which(name) for name in binaries):
        return
    with FileLock(os.path.join(tempfile.gettempdir(), "reprolm-tests-apt.lock")):
        _install(packages, binaries, timeout)


def _install(packages: Sequence[str], binaries: Sequence[str], timeout: float) -> None:
    if all(shutil.which(name) for name in binaries):  # another worker installed them meanwhile
        return
    if shutil.which("apt-get") is None:
        raise AptUnavailable(f"{', '.join(packages)} are not installed and apt-get is absent")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", *packages],
    ):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise AptUnavailable(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    missing = [name for name in binaries if shutil.which(name) is None]
    if missing:
        raise AptUnavailable(f"installed {list(packages)} but still missing: {missing}")
