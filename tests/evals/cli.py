"""Running the ``reprolm`` command line inside a test."""

from __future__ import annotations

import pytest

from reprolm.cli import main


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """(exit code, stdout) of ``reprolm <argv>``; ``capsys``: the test's capture fixture."""
    with pytest.raises(SystemExit) as done:
        main(argv)
    return done.value.code, capsys.readouterr().out
