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
