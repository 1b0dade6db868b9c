"""Digest of the code a stage runs, so that editing it reruns the stage (content, not mtime).

A stage's code = the ``.py`` files of ``stages/<stage>/`` plus every module of the ``stages``
package they import, followed transitively by parsing imports (so a stage that borrows a
helper from ``stages.common`` or another stage reruns when that helper changes). Platform code
in ``reprolm/`` is recorded in each manifest but does not trigger reruns: changing the CLI must
not retrain models.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

from reprolm.hashing import hash_bytes

STAGES_DIR = Path(__file__).resolve().parent.parent / "stages"
PLATFORM_DIR = Path(__file__).resolve().parent
CODE_ROOT = STAGES_DIR.parent


def _module_file(dotted: str, stages_dir: Path) -> Path | None:
    """The source file of ``stages.a.b`` (module or package), if it exists."""
    parts = dotted.split(".")[1:]
    if not parts:
        return None
    base = stages_dir.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_files(path: Path, stages_dir: Path) -> set[Path]:
    """Files of the ``stages`` package that a source file imports."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] == "stages":
                names.append(node.module)
                names += [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names if a.name.split(".")[0] == "stages"]
    return {f for name in names if (f := _module_file(name, stages_dir)) is not None}


def stage_source_files(stage: str, stages_dir: Path = STAGES_DIR) -> list[Path]:
    """Sorted source files that make up a stage: its package and what it imports from stages."""
    package = stages_dir / stage
    if not package.is_dir():
        raise FileNotFoundError(f"{package}: no code for stage {stage!r}")
    files = set(package.rglob("*.py"))
    pending = list(files)
    while pending:
        for found in _imported_files(pending.pop(), stages_dir):
            if found not in files:
                files.add(found)
                pending.append(found)
    return sorted(files)


def stage_source_paths(stage: str, stages_dir: Path = STAGES_DIR) -> list[str]:
    """The stage's source files as POSIX paths relative to the repository root."""
    return [
        p.relative_to(stages_dir.parent).as_posix() for p in stage_source_files(stage, stages_dir)
    ]


@cache
def code_digest(stage: str, stages_dir: Path = STAGES_DIR) -> str:
    """blake3 over (relative path, content) of a stage's source files."""
    return _tree_digest(stage_source_files(stage, stages_dir), stages_dir.parent)


def _tree_digest(files: list[Path], root: Path) -> str:
    parts = [
        p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes() + b"\0" for p in files
    ]
    return hash_bytes(b"".join(parts))


@cache
def platform_digest(platform_dir: Path = PLATFORM_DIR) -> str:
    """blake3 over the platform's own sources (``reprolm/**/*.py``): recorded, not a trigger."""
    return _tree_digest(sorted(platform_dir.rglob("*.py")), platform_dir.parent)
