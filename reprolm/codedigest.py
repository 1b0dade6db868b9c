"""Digest of the code a stage runs, so that editing it reruns the stage (content, not mtime).

A stage's code is every first-party module it can execute outside the platform: the ``.py``
files of ``stages/<stage>/`` plus every module of a *job-code package* (``stages``, ``evals``,
any top-level package of the repository other than ``reprolm``, ``tests`` and ``benchmarks``)
that they import, followed transitively by parsing imports (absolute and relative), plus the
files of each such package's ``data/`` folder (few-shot pools and stimuli are code too: they
change prompts), plus the few platform modules that decide payload bytes when job code calls
them (``PAYLOAD_PLATFORM_MODULES``: canonical JSON, hashing). Any other platform code in
``reprolm/`` is recorded in each manifest but never triggers a rerun: it must not change a
payload byte (``docs/architecture.md``).
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

from reprolm.hashing import hash_bytes

PLATFORM_DIR = Path(__file__).resolve().parent
CODE_ROOT = PLATFORM_DIR.parent
STAGES_DIR = CODE_ROOT / "stages"
PLATFORM_PACKAGE = "reprolm"
NOT_JOB_CODE = frozenset({PLATFORM_PACKAGE, "tests", "benchmarks"})
# Platform modules that decide payload bytes when job code calls them (canonical JSON, the
# payload hashes a source artifact pins, a dataset's digest): followed like job code, so an edit
# of one reruns the jobs that use it. Job code may import from the platform only these and
# JOB_SAFE_PLATFORM_MODULES (tests/unit/test_codedigest.py checks it).
PAYLOAD_PLATFORM_MODULES = frozenset({"reprolm.canonical", "reprolm.hashing", "reprolm.evalplan"})
# Read-only or entry-point platform modules job code may import without them being code of the
# job: the runner entry point (what runs the job, not what it computes) and the manifest /
# lineage readers (they read upstream manifests; the bytes written are the job's own), and
# tracking (the training callback's live metrics: they go to MLflow, never into the payload).
JOB_SAFE_PLATFORM_MODULES = frozenset(
    {"reprolm.runner", "reprolm.manifest", "reprolm.lineage", "reprolm.tracking"}
)
DATA_DIR = "data"


def job_packages(root: Path = CODE_ROOT) -> frozenset[str]:
    """Top-level job-code packages of the source tree at ``root``."""
    return frozenset(
        p.name
        for p in root.iterdir()
        if p.is_dir() and (p / "__init__.py").is_file() and p.name not in NOT_JOB_CODE
    )


def _module_file(dotted: str, root: Path) -> Path | None:
    """The source file of ``pkg.a.b`` (module or package) under ``root``, if it exists."""
    base = root.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _package_of(path: Path, root: Path) -> list[str]:
    """The dotted package a source file belongs to (``evals/ifeval/x.py`` -> evals.ifeval)."""
    return list(path.relative_to(root).parts[:-1])


# (path, root, mtime_ns, size) -> names: a job computes its stage's file set three times
# (resume key, fingerprint record, file hashes); parsing ~200 files costs ~0.5 s each time. The
# stat in the key re-parses a file edited since (what tests and a long-lived planner do).
_IMPORTS: dict[tuple[Path, Path, int, int], list[str]] = {}


def _imported_names(path: Path, root: Path) -> list[str]:
    """Dotted names a source file imports (relative imports resolved against its package)."""
    stat = path.stat()
    key = (path, root, stat.st_mtime_ns, stat.st_size)
    if key not in _IMPORTS:
        _IMPORTS[key] = _parse_imports(path, root)
    return _IMPORTS[key]


def _parse_imports(path: Path, root: Path) -> list[str]:
    names: list[str] = []
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                package = _package_of(path, root)
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            if module:
                names.append(module)
                names += [f"{module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
    return names


def _imported_files(
    path: Path, root: Path, packages: frozenset[str], lookups: dict[str, Path | None]
) -> set[Path]:
    """Job-code source files that a source file imports (``lookups``: module -> file, shared
    by the files of one walk, which ask for the same modules many times)."""

    def module_file(dotted: str) -> Path | None:
        if dotted not in lookups:
            lookups[dotted] = _module_file(dotted, root)
        return lookups[dotted]

    found = set()
    for name in _imported_names(path, root):
        parts = name.split(".")
        if parts[0] == PLATFORM_PACKAGE:
            module = ".".join(parts[:2])
            if module in PAYLOAD_PLATFORM_MODULES and (file := module_file(module)):
                found.add(file)
            continue
        if parts[0] not in packages:
            continue
        # Importing a.b.c runs a/__init__.py and a/b/__init__.py first.
        for depth in range(1, len(parts) + 1):
            if (file := module_file(".".join(parts[:depth]))) is not None:
                found.add(file)
    return found


def _data_files(sources: set[Path], root: Path) -> set[Path]:
    """Files of the ``data/`` folder of every package a source file belongs to."""
    packages = {tuple(_package_of(p, root)) for p in sources}
    dirs = {root.joinpath(*package[:n]) for package in packages for n in range(1, len(package) + 1)}
    files: set[Path] = set()
    for package in dirs:
        data = package / DATA_DIR
        if data.is_dir():
            files |= {f for f in data.rglob("*") if f.is_file() and "__pycache__" not in f.parts}
    return files


def stage_source_files(stage: str, root: Path = CODE_ROOT) -> list[Path]:
    """Sorted files that make up a stage: its package, the job code it imports, their data."""
    package = root / "stages" / stage
    if not package.is_dir():
        raise FileNotFoundError(f"{package}: no code for stage {stage!r}")
    packages = job_packages(root)
    files = set(package.rglob("*.py"))
    pending = list(files)
    lookups: dict[str, Path | None] = {}
    while pending:
        for found in _imported_files(pending.pop(), root, packages, lookups):
            if found not in files:
                files.add(found)
                pending.append(found)
    return sorted(files | _data_files(files, root))


def stage_source_paths(stage: str, root: Path = CODE_ROOT) -> list[str]:
    """The stage's source files as POSIX paths relative to the repository root."""
    return [p.relative_to(root).as_posix() for p in stage_source_files(stage, root)]


@cache
def code_digest(stage: str, root: Path = CODE_ROOT) -> str:
    """blake3 over (relative path, content) of a stage's source files."""
    return _tree_digest(stage_source_files(stage, root), root)


def _tree_digest(files: list[Path], root: Path) -> str:
    parts = [
        p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes() + b"\0" for p in files
    ]
    return hash_bytes(b"".join(parts))


@cache
def platform_digest(platform_dir: Path = PLATFORM_DIR) -> str:
    """blake3 over the platform's own sources (``reprolm/**/*.py``): recorded, not a trigger."""
    return _tree_digest(sorted(platform_dir.rglob("*.py")), platform_dir.parent)


# Recorded beside the digest so a rebuild knows which rule computed it: ``stages-only`` (before
# job code moved out of the platform, absent from old manifests) or this one.
CODE_SCOPE = "job-code/2"


def code_record(stage: str, root: Path = CODE_ROOT) -> dict[str, object]:
    """What a manifest records of a stage's code: digest, scope, and each file's blake3."""
    hashes = _file_hashes(stage, root)
    return {
        "code_digest": code_digest(stage, root),
        "code_scope": CODE_SCOPE,
        "source_files": sorted(hashes),
        "source_hashes": hashes,
        "platform_digest": platform_digest(),
    }


def _file_hashes(stage: str, root: Path) -> dict[str, str]:
    files = stage_source_files(stage, root)
    return {p.relative_to(root).as_posix(): hash_bytes(p.read_bytes()) for p in files}


def changed_sources(recorded: dict[str, str], stage: str, root: Path = CODE_ROOT) -> list[str]:
    """Source files whose content here differs from ``recorded`` (added and removed ones too)."""
    here = _file_hashes(stage, root)
    return sorted(n for n in set(here) | set(recorded) if here.get(n) != recorded.get(n))
