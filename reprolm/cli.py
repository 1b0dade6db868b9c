"""The ``reprolm`` command line.

Exit codes: 0 ok, 1 a check failed (e.g. a payload does not match its manifest), 2 bad input
(a malformed recipe, manifest or payload: one line ``reprolm <command>: <file>: <what>``, never
a traceback), 130 interrupted (Ctrl-C).
Every read command takes ``--json``. Commands live in ``reprolm/commands/<family>.py``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from reprolm.canonical import NotCanonicalError
from reprolm.deepspeed_config import DeepSpeedConfigError
from reprolm.hashing import PayloadError
from reprolm.jsonfile import JSONFileError
from reprolm.lineage import TargetError
from reprolm.manifest import ManifestError
from reprolm.placement import PlacementError
from reprolm.rebuild import RebuildError
from reprolm.recipe import RecipeError

COMMAND_MODULES = (
    "reprolm.commands.inspect",
    "reprolm.commands.mlflow",
    "reprolm.commands.lineage",
    "reprolm.commands.dvc",
    "reprolm.commands.rebuild",
    "reprolm.commands.eval",
    "reprolm.commands.pddl",
)
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
# The project's errors about what the user gave: each message already names the file or key.
BAD_INPUT_ERRORS = (
    RecipeError, ManifestError, PayloadError, TargetError, JSONFileError, NotCanonicalError,
    RebuildError, PlacementError, DeepSpeedConfigError, FileNotFoundError,
)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reprolm", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(commands)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Run one command; bad input exits 2 and Ctrl-C exits 130, each with one line on stderr."""
    command = "reprolm"
    try:
        args = build_parser().parse_args(argv)
        command = f"reprolm {args.command}"
        code = args.func(args)
    except BAD_INPUT_ERRORS as error:
        print(f"{command}: {error}", file=sys.stderr)
        code = EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        code = EXIT_INTERRUPTED
    sys.exit(code)


if __name__ == "__main__":
    main()
