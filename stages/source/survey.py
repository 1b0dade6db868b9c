"""What a source file holds, found while it is counted (one pass): the refusals and the record.

*Refused* (the source job fails, naming the user's file): a parquet / hf_disk file without the
column its kind reads (``text_key``, ``messages_key``, ``chosen`` + ``rejected``,
``ground_truth``); a source none of whose rows can become a training row (every file empty,
every line malformed, or no row fitting the kind's schema). *Recorded* (the job succeeds): an
empty file among others (its one ``empty file`` position) and malformed jsonl lines (invalid
UTF-8, invalid or truncated JSON, a value that is no object, a damaged compressed stream),
counted in ``source.json`` with the first ``FIRST`` per file as ``file:line: reason``; they
stay Rejects at their positions, which curate records and bounds with
``curate.reject_rate_max``, as it does rows the schemas or filters decline.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stages.source.readers import EMPTY, Record, Reject, count_rows, iter_records
from stages.source.schemas import RowError, to_internal

FIRST = 10  # malformed lines listed per file


class SurveyError(ValueError):
    """A source file the job refuses (the message names the file and the fix)."""


def columns(kind: str, source: Mapping[str, Any]) -> tuple[str, ...]:
    """The fields a row of ``kind`` must hold (a parquet / hf_disk column check)."""
    if kind == "pretrain":
        return (source.get("text_key") or "text",)
    if kind == "sft":
        return (source.get("messages_key") or "messages",)
    if kind == "preference":
        return ("chosen", "rejected")
    return (source.get("messages_key") or "messages", "ground_truth")


def _column_names(path: Path, fmt: str, split: str | None) -> list[str] | None:
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return list(pq.ParquetFile(path).schema_arrow.names)
        except (pa.ArrowException, OSError):
            return None  # unreadable: a Reject at position 0, as the reader reports it
    from stages.source.readers import _hf_dataset

    return list(_hf_dataset(path, split).column_names)


def survey(path: Path, fmt: str, source: Mapping[str, Any]) -> dict[str, Any]:
    """``{rows, malformed, first_malformed, usable}`` of one file (``usable``: whether a row
    of it becomes a training row; for parquet / hf_disk assumed once the columns are there)."""
    split = source.get("split")
    if fmt != "jsonl":
        rows = count_rows(path, fmt, split)
        names = _column_names(path, fmt, split)
        if names is not None:
            missing = [c for c in columns(source["kind"], source) if c not in names]
            if missing:
                raise SurveyError(
                    f"{path}: no column {', '.join(map(repr, missing))} (columns: "
                    f"{', '.join(names)}); set the source's text_key / messages_key, or fix "
                    "the kind"
                )
        first = next(iter(iter_records(path, fmt, 0, 1, split=split)), None)
        if isinstance(first, Reject):  # an empty or unreadable file: its one position
            return {"rows": rows, "malformed": 1, "first_malformed": [_shown(first)],
                    "usable": False}  # fmt: skip
        return {"rows": rows, "malformed": 0, "first_malformed": [], "usable": True}
    rows, malformed, listed, usable, unusable = 0, 0, [], False, None
    for item in iter_records(path, fmt):
        rows += 1
        if isinstance(item, Reject):
            malformed += 1
            if len(listed) < FIRST:
                listed.append(_shown(item))
        elif not usable:  # one converted row per file shows the schema fits
            usable, unusable = _converts(item, source, rows - 1, unusable)
    record = {"rows": rows, "malformed": malformed, "first_malformed": listed, "usable": usable}
    if not usable:
        record["unusable"] = unusable
    return record


def _shown(reject: Reject) -> str:
    if reject.reason == EMPTY:
        return f"{reject.file}: empty file (no rows)"
    return f"{reject.file}:{reject.line}: {reject.reason}"


def _converts(
    item: Record, source: Mapping[str, Any], position: int, seen: str | None
) -> tuple[bool, str | None]:
    try:
        to_internal(source["kind"], item.row, source, position)
    except RowError as error:
        return False, seen or f"{item.file}:{item.line}: {error}"
    return True, None


def check_usable(files: list[dict], source: Mapping[str, Any]) -> None:
    """Refuse a source none of whose files has a row that becomes a training row."""
    if any(f["usable"] for f in files):
        return
    reasons = [f.get("unusable") or (f["first_malformed"] or ["?"])[0] for f in files]
    raise SurveyError(
        f"sources.{source['kind']} ({source['name']}): no row becomes a {source['kind']} "
        "training row; first problem per file:\n  " + "\n  ".join(reasons) + "\n"
        "fix the rows, the format, or the source's text_key / messages_key "
        "(docs/stages/source.md lists the schemas)"
    )
