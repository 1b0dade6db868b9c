"""Keep what is already produced: a failed or killed re-run never costs the previous artifact.

Snakemake declares ``<artifact>/provenance.json`` as a job's output and deletes it before the
job starts and again when the job fails, which would leave the old, correct payload without
its manifest. So when the runner installs an artifact it keeps a hard link of the manifest
outside the declared outputs, ``artifacts/<stage>/.<label>-<fingerprint>.manifest`` (the same
inode, no copy), and a missing manifest is put back from that link, at job start and in the
workflow's ``onerror`` hook, whenever the payload still verifies against it.

The install itself renames ``<artifact>`` to ``.<name>.old-<pid>`` and the scratch directory
``.<name>.partial-<pid>`` into place; leftovers of a process killed in between are cleaned
(an ``.old`` one moved back first when nothing was installed) at the next run of that job.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from reprolm.hashing import MANIFEST_NAME
from reprolm.manifest import ManifestError, load_manifest, verify_payload

LEFTOVER_KINDS = ("old", "partial")


def manifest_link(output: Path) -> Path:
    """Where the hard link of ``output``'s manifest lives: beside it, a dot file."""
    return Path(output).with_name(f".{Path(output).name}.manifest")


def keep_manifest(output: Path) -> None:
    """Hard-link ``output/provenance.json`` to its kept copy (replacing an older link)."""
    link = manifest_link(output)
    temporary = link.with_name(f"{link.name}.tmp-{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    os.link(Path(output) / MANIFEST_NAME, temporary)
    os.replace(temporary, link)


def restore_manifest(output: Path) -> bool:
    """Put back a missing ``output/provenance.json`` from its kept link; True if restored.

    Only when the kept manifest is the one of this directory (same fingerprint) and the payload
    on disk still verifies against it: a damaged payload stays without a manifest.
    """
    output = Path(output)
    link, target = manifest_link(output), output / MANIFEST_NAME
    if target.exists() or not link.is_file() or not output.is_dir():
        return False
    try:
        manifest = load_manifest(link)
    except ManifestError:
        return False
    if not output.name.endswith(f"-{manifest['fingerprint']}") or verify_payload(output, manifest):
        return False
    with contextlib.suppress(FileExistsError):  # another rank of the same job was first
        os.link(link, target)
    return True


def restore_all(outputs: list[Path]) -> list[Path]:
    """Restore every restorable manifest among ``outputs``; return the restored directories."""
    return [Path(output) for output in outputs if restore_manifest(Path(output))]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def leftovers(output: Path) -> list[Path]:
    """Install leftovers of ``output`` (``.<name>.old-<pid>``, ``.partial-<pid>``) whose process
    is gone (never this process's own)."""
    output = Path(output)
    found = []
    for kind in LEFTOVER_KINDS:
        for path in sorted(output.parent.glob(f".{output.name}.{kind}-*")):
            pid = path.name.rpartition("-")[2]
            if pid.isdigit() and (int(pid) == os.getpid() or _pid_alive(int(pid))):
                continue
            found.append(path)
    return found


def clean_leftovers(output: Path) -> None:
    """Remove dead processes' install leftovers; an ``.old`` one whose payload verifies goes
    back to ``output`` first when a kill between the two renames left nothing installed."""
    output = Path(output)
    for path in leftovers(output):
        if not output.exists() and path.name.startswith(f".{output.name}.old-"):
            try:
                intact = not verify_payload(path)
            except ManifestError:
                intact = False
            if intact:
                path.rename(output)
                continue
        shutil.rmtree(path, ignore_errors=True)
