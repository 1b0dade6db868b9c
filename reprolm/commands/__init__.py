"""CLI commands: one module per command family, each with ``register(commands)``.

A new family is a module here plus one line in ``reprolm.cli.COMMAND_MODULES``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reprolm.canonical import dump_json

DEFAULT_RECIPE = Path("config/tiny.yaml")
Handler = Callable[[argparse.Namespace], int]


def add_command(
    commands: Any, name: str, handler: Handler, help_text: str, *, recipe: bool = False
) -> argparse.ArgumentParser:
    """A subcommand with ``--json`` (and ``--recipe`` when it reads a recipe)."""
    sub = commands.add_parser(name, help=help_text, description=help_text)
    sub.set_defaults(func=handler)
    sub.add_argument("--json", action="store_true", help="machine-readable output")
    if recipe:
        sub.add_argument("--recipe", type=Path, default=DEFAULT_RECIPE, help="recipe YAML")
    return sub


def emit(value: Any, as_json: bool, text: str) -> None:
    """Print JSON (sorted, indented) or the human text."""
    print(dump_json(value).rstrip("\n") if as_json else text)
