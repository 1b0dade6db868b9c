"""Digest of the code a stage runs, so that editing it reruns the stage (content, not mtime).

A stage's code = the ``.py`` files of ``stages/<stage>/`` plus every ``stages.common`` module
they import (followed transitively by parsing imports). Platform code in ``reprolm/`` is
recorded in each manifest but does not trigger reruns: changing the CLI must not retrain models.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

from reprolm.hashing import hash_bytes

STAGES_DIR = Path(__file__).resolve().parent.parent / "stages"


def _common_imports(path: Path) -> set[str]:
    """Names of ``stages.common.<module>`` modules a source file imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith("stages.common."):
                found.add(node.module.split(".")[2])
            elif node.module == "stages.common":
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("stages.common."):
                    found.add(alias.name.split(".")[2])
    return found


def stage_source_files(stage: str, stages_dir: Path = STAGES_DIR) -> list[Path]:
    """Sorted source files that make up a stage: its package and the common modules it uses."""
    package = stages_dir / stage
    if not package.is_dir():
        raise FileNotFoundError(f"{package}: no code for stage {stage!r}")
    files = set(package.rglob("*.py"))
    pending = [path for path in files]
    while pending:
        for module in _common_imports(pending.pop()):
            candidate = stages_dir / "common" / f"{module}.py"
            if candidate.is_file() and candidate not in files:
                files.add(candidate)
                pending.append(candidate)
    return sorted(files)


@cache
def code_digest(stage: str, stages_dir: Path = STAGES_DIR) -> str:
    """blake3 over (relative path, content) of a stage's source files."""
    parts = []
    for path in stage_source_files(stage, stages_dir):
        rel = path.relative_to(stages_dir.parent).as_posix()
        parts.append(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    return hash_bytes(b"".join(parts))
