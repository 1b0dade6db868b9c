"""Plan-time check of a recipe's ``sources``: every entry names readable input of its format.

Cheap on purpose (the plan runs it on every `reprolm plan` / `snakemake -n`): it resolves each
path (a file, a directory searched recursively, or a glob) and touches only ``stat`` and the
first bytes of each file; hashing and counting are the ``source`` job's work. The resolution
rules are those of the job code (stages/source/files.py), which this platform module may not
import; tests/unit/test_sources.py checks the two agree.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reprolm.recipe import RecipeError

KINDS = ("pretrain", "sft", "preference", "rlvr")
SUFFIXES: dict[str, tuple[str, ...]] = {
    "jsonl": (".jsonl", ".json", ".jsonl.gz", ".jsonl.zst", ".json.gz", ".json.zst"),
    "parquet": (".parquet",),
}
HF_DISK_MARKERS = ("state.json", "dataset_dict.json")
MAGIC = {".gz": (b"\x1f\x8b", "gzip"), ".zst": (b"\x28\xb5\x2f\xfd", "zstd")}
PARQUET_MAGIC = b"PAR1"


class SourceError(RecipeError):
    """``sources`` entries cannot be read (the message names each entry and the fix); a recipe
    error, so the workflow stops before any job with the message alone."""


def _is_input(path: Path, fmt: str) -> bool:
    if fmt == "hf_disk":
        return path.is_dir() and any((path / m).is_file() for m in HF_DISK_MARKERS)
    return path.is_file() and path.name.lower().endswith(SUFFIXES[fmt])


def resolve(path: str, fmt: str) -> list[Path]:
    """The inputs ``path`` names (as stages/source/files.py resolves them); [] when none."""
    given = Path(path).expanduser()
    if glob.has_magic(str(given)):
        found = (Path(p) for p in glob.glob(str(given), recursive=True))
        return sorted({p.resolve() for p in found if _is_input(p, fmt)})
    if not given.exists():
        return []
    if fmt == "hf_disk" or given.is_file():
        return [given.resolve()] if fmt != "hf_disk" or _is_input(given, fmt) else []
    return sorted(p.resolve() for p in given.rglob("*") if _is_input(p, fmt))


def _head(path: Path, size: int = 4) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(size)


def _problem(path: Path, fmt: str) -> str | None:
    """What is wrong with one resolved input, from stat and its first bytes; None if nothing."""
    if fmt == "hf_disk":
        marker = next(path / m for m in HF_DISK_MARKERS if (path / m).is_file())
        target = marker
    else:
        target = path
    if not os.access(target, os.R_OK):
        return f"{target}: not readable (permission denied); grant read access to the job's user"
    try:
        head = _head(target)
    except OSError as error:
        return f"{target}: cannot be read ({error.strerror or error})"
    if fmt == "parquet" and head != PARQUET_MAGIC and path.stat().st_size:
        return f"{path}: not a parquet file (it does not start with PAR1); fix the format"
    suffix = path.suffix.lower()
    if fmt == "jsonl" and suffix in MAGIC and head:
        magic, name = MAGIC[suffix]
        if not head.startswith(magic):
            return f"{path}: named {suffix} but not {name} data; rename it or recompress it"
    return None


def _check_entry(entry: Mapping[str, Any]) -> None:
    path, fmt = str(entry["path"]), entry["format"]
    if fmt not in ("jsonl", "parquet", "hf_disk"):
        raise SourceError(f"format {fmt!r} is none of jsonl, parquet, hf_disk")
    files = resolve(path, fmt)
    if not files:
        what = (
            "a directory saved with datasets' save_to_disk (state.json or dataset_dict.json)"
            if fmt == "hf_disk"
            else "files ending in " + ", ".join(SUFFIXES[fmt])
        )
        raise SourceError(f"path {path} matches no {fmt} input ({what}); fix the path or format")
    for file in files:
        problem = _problem(file, fmt)
        if problem:
            raise SourceError(problem)


def check_sources(sources: Mapping[str, Any] | None) -> None:
    """Raise SourceError naming every bad entry, one per line, as ``sources.<kind>[i] (<name>):
    what is wrong and how to fix it``."""
    problems = []
    for kind in KINDS:
        names: dict[str, int] = {}
        for i, entry in enumerate((sources or {}).get(kind) or []):
            name = entry.get("name")
            label = f"sources.{kind}[{i}] ({name})"
            if name in names:
                problems.append(
                    f"{label}: the name is used by sources.{kind}[{names[name]}] too; source "
                    "names are unique within a kind (they prefix row ids)"
                )
            names.setdefault(name, i)
            try:
                _check_entry(entry)
            except SourceError as error:
                problems.append(f"{label}: {error}")
            except KeyError as error:
                problems.append(f"{label}: missing key {error}")
    if problems:
        raise SourceError("\n".join(problems))


def check_verifiers(sources: Mapping[str, Any]) -> None:
    """Each `sources.rlvr` entry's ``verifier`` (when it names one) is a registered verifier:
    a typo fails the plan, not the rlvr job after pretraining."""
    from evals.verifiers import VERIFIERS

    for index, entry in enumerate(sources.get("rlvr") or ()):
        named = {"verifier": entry.get("verifier")}
        for dataset, verifier in (entry.get("dataset_verifiers") or {}).items():
            named[f"dataset_verifiers.{dataset}"] = verifier
        for key, name in named.items():
            if name is not None and name not in VERIFIERS:
                raise RecipeError(
                    f"sources.rlvr[{index}] ({entry['name']}): {key} {name!r} is not "
                    f"registered; known verifiers: {', '.join(sorted(VERIFIERS))} "
                    "(evals/verifiers.py)"
                )
