"""The ``reprolm`` command line.

Exit codes: 0 ok, 1 a check failed (e.g. a payload does not match its manifest), 2 bad input.
Every read command takes ``--json``. Commands live in ``reprolm/commands/<family>.py``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from reprolm.hashing import PayloadError
from reprolm.manifest import ManifestError
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reprolm", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(commands)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
    except (RecipeError, ManifestError, PayloadError, FileNotFoundError) as error:
        print(f"reprolm: {error}", file=sys.stderr)
        code = EXIT_BAD_INPUT
    sys.exit(code)


if __name__ == "__main__":
    main()
