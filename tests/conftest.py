"""Session fixtures shared by integration and end-to-end tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support import make_checkout, run_snakemake

RUN_OUTPUT = "snakemake-output.txt"  # beside the workspace: what its one run printed


@pytest.fixture(scope="session")
def micro_workspace(tmp_path_factory, worker_id):
    """A copy of the project with the micro recipe run once, end to end (read-only: use
    ``tests.support.clone_workspace`` to get a copy you may change).

    Under pytest-xdist (``make test`` runs two workers) the run happens once per test session,
    not once per worker: the first worker to ask makes it in the session's shared temp
    directory under a file lock; the others wait and reuse it."""
    if worker_id == "master":  # plain pytest: no other process to share with
        return make_micro_workspace(tmp_path_factory.mktemp("micro"))
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp().parent / "micro-shared"
    with FileLock(f"{shared}.lock"):
        if not (shared / RUN_OUTPUT).is_file():  # absent too after a failed attempt
            shutil.rmtree(shared, ignore_errors=True)
            shared.mkdir()
            make_micro_workspace(shared)
    return shared / "workspace"


def make_micro_workspace(where: Path) -> Path:
    checkout = make_checkout(where / "workspace")
    done = run_snakemake(checkout)
    (where / RUN_OUTPUT).write_text(done.stdout + done.stderr, encoding="utf-8")
    return checkout


@pytest.fixture(scope="session")
def micro_run_output(micro_workspace) -> str:
    """What Snakemake printed while it made ``micro_workspace`` (stdout + stderr)."""
    return (micro_workspace.parent / RUN_OUTPUT).read_text(encoding="utf-8")


@pytest.fixture(autouse=True)
def _environment_does_not_leak():
    """Jobs run in-process set variables (HF_HUB_OFFLINE, numerics pins); later tests and the
    workflows they start must not inherit them, or results depend on test order."""
    import os

    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
