"""Which files a ``sources`` entry names: a file, a directory (searched recursively) or a glob."""

from __future__ import annotations

import glob
from pathlib import Path

FORMATS = ("jsonl", "parquet", "hf_disk")
# Suffixes each format accepts inside a directory or glob; compression is told by the suffix.
SUFFIXES: dict[str, tuple[str, ...]] = {
    "jsonl": (".jsonl", ".json", ".jsonl.gz", ".jsonl.zst", ".json.gz", ".json.zst"),
    "parquet": (".parquet",),
}
HF_DISK_MARKERS = ("state.json", "dataset_dict.json")


class SourceError(ValueError):
    """A source cannot be read as configured (the message names the path and the fix)."""


def compression(path: Path) -> str | None:
    """``gzip``, ``zstd`` or None, by suffix."""
    name = path.name.lower()
    if name.endswith(".gz"):
        return "gzip"
    if name.endswith(".zst"):
        return "zstd"
    return None


def _matches(path: Path, fmt: str) -> bool:
    return path.is_file() and path.name.lower().endswith(SUFFIXES[fmt])


def _is_hf_disk(path: Path) -> bool:
    return path.is_dir() and any((path / name).is_file() for name in HF_DISK_MARKERS)


def _accepted(fmt: str) -> str:
    if fmt == "hf_disk":
        return (
            "a directory written by datasets' save_to_disk (with state.json or dataset_dict.json)"
        )
    return "files ending in " + ", ".join(SUFFIXES[fmt])


def resolve_files(path: str, fmt: str) -> list[Path]:
    """The absolute, resolved files of a source, sorted; for ``hf_disk`` the dataset directory.

    ``path``: a file, a directory (every file of the format under it, recursively; for hf_disk
    the directory itself) or a glob (``*``, ``?``, ``[``; ``**`` recursive). Raises SourceError
    when nothing of the format is there.
    """
    if fmt not in FORMATS:
        raise SourceError(f"{path}: unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    given = Path(path).expanduser()
    if glob.has_magic(str(given)):
        found = [Path(p) for p in glob.glob(str(given), recursive=True)]
        keep = [p for p in found if (_is_hf_disk(p) if fmt == "hf_disk" else _matches(p, fmt))]
        if not keep:
            raise SourceError(
                f"{path}: the glob matches no {fmt} input ({len(found)} paths matched, none of "
                f"them {_accepted(fmt)}); fix the path or the format"
            )
        return sorted({p.resolve() for p in keep})
    if not given.exists():
        raise SourceError(f"{path}: no such file or directory; fix the source's path")
    if fmt == "hf_disk":
        if not _is_hf_disk(given):
            raise SourceError(f"{path}: not {_accepted(fmt)}; point path at the saved dataset")
        return [given.resolve()]
    if given.is_file():
        return [given.resolve()]
    found = sorted(p.resolve() for p in given.rglob("*") if _matches(p, fmt))
    if not found:
        raise SourceError(
            f"{path}: a directory without {fmt} files ({_accepted(fmt)}); fix the path or format"
        )
    return found
