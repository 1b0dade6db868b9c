"""Session fixtures shared by integration and end-to-end tests."""

from __future__ import annotations

import pytest

from tests.support import make_checkout, run_snakemake


@pytest.fixture(scope="session")
def micro_workspace(tmp_path_factory):
    """A copy of the project with the micro recipe run once, end to end (read-only: use
    ``tests.support.clone_workspace`` to get a copy you may change)."""
    checkout = make_checkout(tmp_path_factory.mktemp("micro") / "workspace")
    run_snakemake(checkout)
    return checkout


@pytest.fixture(autouse=True)
def _environment_does_not_leak():
    """Jobs run in-process set variables (HF_HUB_OFFLINE, numerics pins); later tests and the
    workflows they start must not inherit them, or results depend on test order."""
    import os

    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
