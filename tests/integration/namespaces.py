"""Real file-system faults without root: Linux user + mount namespaces (``unshare``).

Tests run as root in CI, where chmod does not stop a write. ``unshare -U`` (a user namespace
without a uid mapping) runs a command without CAP_DAC_OVERRIDE over the host's files, so mode
bits apply again; ``unshare -Urm`` can mount a read-only or tiny tmpfs seen only by the command.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest


def _namespaces_work() -> bool:
    probe = "mount -t tmpfs -o size=16k tmpfs /mnt && test -d /mnt"
    if shutil.which("unshare") is None:
        return False
    try:
        return subprocess.run(["unshare", "-Urm", "sh", "-c", probe], timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


NAMESPACES = _namespaces_work()
needs_namespaces = pytest.mark.skipif(not NAMESPACES, reason="no unprivileged user namespaces")


def with_tmpfs(directory: object, options: str) -> tuple[str, ...]:
    """A command prefix: run in a new mount namespace with a tmpfs (``options``) on
    ``directory``."""
    mount = f'mount -t tmpfs -o {options} tmpfs "$0" && exec "$@"'
    return ("unshare", "-Urm", "sh", "-c", mount, str(directory))
