"""Helpers for tests that run the real workflow: a copy of the repository and Snakemake in it.

A copy (code, rules, recipes) lets a test edit stage sources or recipes without touching the
checkout; ``PYTHONPATH`` points at the copy so its ``reprolm``/``stages`` are the ones imported.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPIED = (
    "Snakefile",
    "workflow",
    "config",
    "stages",
    "evals",
    "reprolm",
    "data",
    "requirements.lock",
)
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--profile", "workflow/profiles/local"]
MICRO = "config/micro.yaml"


def make_checkout(where: Path) -> Path:
    """Copy the project's code, rules and recipes into ``where``."""
    where.mkdir(parents=True)
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, where / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.is_file():
            shutil.copy2(source, where / name)
    return where


def checkout_env(checkout: Path, **extra: str) -> dict[str, str]:
    """Environment that imports the copy's packages and writes no bytecode into it."""
    return {**os.environ, "PYTHONPATH": str(checkout), "PYTHONDONTWRITEBYTECODE": "1", **extra}


def run_snakemake(
    checkout: Path, *args: str, recipe: str = MICRO, check: bool = True
) -> subprocess.CompletedProcess:
    """Run the workflow in ``checkout`` with the local profile on 2 cores."""
    done = subprocess.run(
        # Targets first: --configfile takes several values and would swallow them.
        [*SNAKEMAKE, "--cores", "2", *args, "--configfile", recipe],
        cwd=checkout, env=checkout_env(checkout), capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    if check and done.returncode != 0:
        raise AssertionError(
            f"snakemake {args} failed:\n{done.stdout[-4000:]}\n{done.stderr[-6000:]}"
        )
    return done


def reprolm(
    checkout: Path, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run the ``reprolm`` CLI of the copy (``env``: extra variables)."""
    return subprocess.run(
        [sys.executable, "-m", "reprolm.cli", *args],
        cwd=cwd or checkout, env=checkout_env(checkout, **(env or {})), capture_output=True,
        text=True,
        timeout=1800,
    )  # fmt: skip


def clone_workspace(source: Path, where: Path) -> Path:
    """A copy of a finished workspace (code, recipes, artifacts) to mutate freely."""
    shutil.copytree(source, where, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    return where
