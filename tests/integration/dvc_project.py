"""A throw-away git + DVC project made from a copy of the repository, for integration tests.

Everything runs as subprocesses in the copy (``PYTHONPATH`` points at it), with DVC analytics
off and DVC's site cache inside the test's temp dir, so nothing outside it is touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support import make_checkout

ROOT = Path(__file__).resolve().parents[2]
HOOK_INCLUDE = 'include: "workflow/rules/dvc.smk"'


def make_project(where: Path) -> Path:
    """Copy the code, rules and recipes to ``where`` and wire the DVC hook if not yet wired."""
    make_checkout(where)
    shutil.copy2(ROOT / ".gitignore", where / ".gitignore")
    snakefile = where / "Snakefile"
    text = snakefile.read_text()
    if HOOK_INCLUDE not in text:
        # What the Snakefile gets once wired: the include and the call in its onsuccess.
        lines = text.splitlines(keepends=True)
        last = max(i for i, line in enumerate(lines) if line.startswith("include:"))
        lines.insert(last + 1, HOOK_INCLUDE + "\n")
        text = "".join(lines).replace("onsuccess:\n", "onsuccess:\n    dvc_commit_on_success()\n")
        snakefile.write_text(text)
    return where


def environment(project: Path, scratch: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(project),
        "PYTHONDONTWRITEBYTECODE": "1",
        "DVC_NO_ANALYTICS": "1",
        "DVC_SITE_CACHE_DIR": str(scratch / "dvc-site-cache"),
        "GIT_AUTHOR_NAME": "reprolm test",
        "GIT_AUTHOR_EMAIL": "test@example.invalid",
        "GIT_COMMITTER_NAME": "reprolm test",
        "GIT_COMMITTER_EMAIL": "test@example.invalid",
    }


def run(
    cwd: Path, env: dict[str, str], *args: str, check: bool = True, timeout: int = 1800
) -> subprocess.CompletedProcess:
    done = subprocess.run(
        list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} failed ({done.returncode}):\n"
            f"{done.stdout[-4000:]}\n{done.stderr[-6000:]}"
        )
    return done


def reprolm(cwd: Path, env: dict[str, str], *args: str, check: bool = True):
    return run(cwd, env, sys.executable, "-m", "reprolm.cli", *args, check=check)


def snakemake(cwd: Path, env: dict[str, str], *args: str, check: bool = True):
    return run(
        cwd, env, sys.executable, "-m", "snakemake", "--profile", "workflow/profiles/local",
        "--cores", "2", "--configfile", "config/micro.yaml", *args, check=check,
    )  # fmt: skip
