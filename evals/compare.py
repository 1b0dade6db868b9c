"""Comparison tables: tasks × checkpoints (of one recipe, or across recipes).

An :class:`Entry` is one number: a column (``"sft"``, ``"tiny/rlvr"``), a task and its primary
metric, the value, its standard error and instance count when known, the spec hash it was
computed under (``None`` for the world's eval sets, which have no versioned spec) and the
decontamination figure of the training data against the task's dataset.

:func:`build` arranges entries into rows (one per task and metric) and columns (as given). A
row's spec is the first column's that has the task; a number computed under another spec is
**not put in the row** (OLMES: a different prompt, shot set, normalization or sample makes a
different number): its cell says ``≠ spec`` and a note under the table gives the number with
its own spec hash. A base model's number on a chat spec's base variant (``gsm8k::olmes`` for
``gsm8k:cot::tulu``) sits in the variant's row; ``variants`` (and a list under the Markdown
table) says which column ran it for which requested spec and why. Renderers: :func:`markdown`,
:func:`csv_text` (one line per cell, exact float repr), ``evals.plot.write_plot``. Pure Python;
nothing heavy is imported.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

SCHEMA = "reprolm.eval.comparison/1"
OK, MISSING, MISMATCH = "ok", "missing", "spec_mismatch"
NONE = "–"
VARIES = "per cell"  # a row attribute (n, decontamination) that differs between its cells
EXTERNAL_MARK = "(external)"  # after the header of a column produced outside the recipe
HASH_CHARS = 8
CSV_FIELDS = (
    "task", "metric", "row_spec_hash", "column", "status", "value", "stderr", "n", "spec_hash",
    "contamination", "flagged", "instances",
)  # fmt: skip


@dataclass(frozen=True)
class Entry:
    """One score of one column on one task."""

    column: str
    task: str
    metric: str
    value: float
    stderr: float | None = None
    n: int | None = None
    spec_hash: str | None = None
    decontamination: dict[str, Any] | None = None  # {"contamination", "flagged", "instances"}
    variant: dict[str, str] | None = None  # a base variant run for a chat spec: requested, ran, why

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Entry:
        return cls(**{k: doc.get(k) for k in cls.__dataclass_fields__})


def decontamination(value: Any, where: str) -> dict[str, Any] | None:
    """Normalize a decontamination record: a share, or ``{"contamination", ...}``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, dict)):
        raise ValueError(
            f"{where}: 'decontamination' must be a number (the contaminated share) or "
            f'{{"contamination": share, "flagged": n, "instances": n}}, got {value!r}'
        )
    if isinstance(value, dict):
        if "contamination" not in value:
            raise ValueError(f"{where}: 'decontamination' lacks the 'contamination' share")
        value = {k: value.get(k) for k in ("contamination", "flagged", "instances")}
    else:
        value = {"contamination": value, "flagged": None, "instances": None}
    value["contamination"] = float(value["contamination"])
    return value


def build(
    entries: list[Entry], columns: list[str] | None = None, external: Sequence[str] = ()
) -> dict[str, Any]:
    """The comparison table (a JSON-ready dict) of ``entries``.

    ``columns`` fixes the column order (default: first appearance); a column without entries
    is kept (all cells missing). Two entries of one column for the same task and metric are
    an error. ``external``: columns scored from responses produced outside the recipe (an API
    model's); the table lists them under ``external`` (absent when none) and renderers mark them.
    """
    order = list(columns or [])
    for entry in entries:
        if entry.column not in order:
            order.append(entry.column)
    grouped: dict[tuple[str, str], dict[str, Entry]] = {}
    for entry in entries:
        cells = grouped.setdefault((entry.task, entry.metric), {})
        if entry.column in cells:
            raise ValueError(
                f"column {entry.column!r} has two results for {entry.task} ({entry.metric}): "
                "give each model's results once (or label the inputs apart)"
            )
        cells[entry.column] = entry
    rows, notes = [], []
    for (task, metric), by_column in sorted(grouped.items()):
        reference = next(by_column[c] for c in order if c in by_column).spec_hash
        cells = {}
        for column in order:
            entry = by_column.get(column)
            if entry is None:
                cells[column] = {"status": MISSING}
                continue
            status = OK if entry.spec_hash == reference else MISMATCH
            cells[column] = {"status": status, **_cell(entry)}
            if status == MISMATCH:
                notes.append(
                    f"{column}, {task} ({metric}): {_number(entry)} under spec "
                    f"{_short(entry.spec_hash)}, not comparable to the row's spec "
                    f"{_short(reference)}; not shown in the row"
                )
        comparable = [c for c in cells.values() if c["status"] == OK]
        rows.append(
            {
                "task": task,
                "metric": metric,
                "spec_hash": reference,
                "n": _uniform(c["n"] for c in comparable),
                "decontamination": _uniform(c["decontamination"] for c in comparable),
                "cells": cells,
            }
        )
    variants = [
        f"{e.column}, {e.task}: the base-model variant of {e.variant['requested']} "
        f"({e.variant['reason']})"
        for e in sorted(entries, key=_entry_key(order))
        if e.variant
    ]
    table = {
        "schema": SCHEMA,
        "columns": order,
        "rows": rows,
        "notes": notes,
        "variants": variants,
        "entries": [asdict(e) for e in sorted(entries, key=_entry_key(order))],
    }
    marked = [column for column in order if column in set(external)]
    if marked:
        table["external"] = marked
    return table


def column_title(table: dict[str, Any], column: str) -> str:
    """A column's header: its label, ``(external)`` after an external one."""
    return f"{column} {EXTERNAL_MARK}" if column in table.get("external", ()) else column


def entries_of(table: dict[str, Any]) -> list[Entry]:
    """The entries a table was built from (e.g. one stored in a release)."""
    if table.get("schema") != SCHEMA:
        raise ValueError(f"not a comparison table: 'schema' is {table.get('schema')!r}")
    return [Entry.from_dict(doc) for doc in table["entries"]]


def _entry_key(order: list[str]):
    return lambda e: (order.index(e.column), e.task, e.metric)


def _cell(entry: Entry) -> dict[str, Any]:
    return {
        "value": entry.value,
        "stderr": entry.stderr,
        "n": entry.n,
        "spec_hash": entry.spec_hash,
        "decontamination": entry.decontamination,
    }


def _uniform(values) -> Any:
    """The one value all comparable cells share (None if none), else :data:`VARIES`."""
    seen = list(values)
    if not seen:
        return None
    return seen[0] if all(v == seen[0] for v in seen) else VARIES


def _short(spec_hash: str | None) -> str:
    return f"`{spec_hash[:HASH_CHARS]}`" if spec_hash else "(none: world eval set)"


def _number(cell: Entry | dict) -> str:
    get = cell.get if isinstance(cell, dict) else lambda k: getattr(cell, k)
    text = f"{get('value'):.3f}"
    return text if get("stderr") is None else f"{text} ± {get('stderr'):.3f}"


def _decon_text(record: dict[str, Any] | None) -> str:
    if record is None:
        return NONE
    text = f"{100 * record['contamination']:.1f}%"
    if record.get("flagged") is not None and record.get("instances") is not None:
        text += f" ({record['flagged']}/{record['instances']})"
    return text


def markdown(table: dict[str, Any]) -> str:
    """The table as Markdown, followed by its legend and notes."""
    columns = table["columns"]
    lines = [
        "| task | metric | spec | n | decontamination | "
        + " | ".join(column_title(table, c) for c in columns)
        + " |",
        "|---|---|---|---:|---|" + "---:|" * len(columns),
    ]
    for row in table["rows"]:
        row_n, row_decon = row["n"], row["decontamination"]
        cells = []
        for column in columns:
            cell = row["cells"][column]
            if cell["status"] == MISSING:
                cells.append(NONE)
            elif cell["status"] == MISMATCH:
                cells.append("≠ spec")
            else:
                extra = []
                if row_n == VARIES and cell["n"] is not None:
                    extra.append(f"n={cell['n']}")
                if row_decon == VARIES:
                    extra.append(f"decontam. {_decon_text(cell['decontamination'])}")
                cells.append(_number(cell) + (f" ({', '.join(extra)})" if extra else ""))
        spec = f"`{row['spec_hash'][:HASH_CHARS]}`" if row["spec_hash"] else NONE
        n = NONE if row_n is None else str(row_n)
        decon = row_decon if row_decon == VARIES else _decon_text(row_decon)
        lines.append(
            f"| {row['task']} | {row['metric']} | {spec} | {n} | {decon} | "
            + " | ".join(cells)
            + " |"
        )
    legend = (
        "Cells: the primary metric (± standard error where known). `–`: not evaluated. "
        "`≠ spec`: computed under a different task spec than the row's (hash in `spec`, "
        "a prefix of the resolved spec's blake3), so not comparable and not shown in the row. "
        "Spec `–`: a world eval set, which has no versioned spec (comparable within one world "
        "and one evaluate config only). Decontamination: share of the task's instances flagged "
        "in the training data."
    )
    if table.get("external"):
        legend += (
            f" {EXTERNAL_MARK}: scored from responses produced outside the recipe (see "
            "`reprolm audit` of its score artifact for what produced them)."
        )
    out = "\n".join(lines) + "\n\n" + legend + "\n"
    if table["notes"]:
        out += "\nNot comparable (different spec):\n\n" + "".join(
            f"* {note}\n" for note in table["notes"]
        )
    if table.get("variants"):
        out += "\nRun in place of the requested spec (base models):\n\n" + "".join(
            f"* {line}\n" for line in table["variants"]
        )
    return out


def csv_text(table: dict[str, Any]) -> str:
    """One line per (row, column) cell; floats as ``repr`` (exact), empty for none, ``\\n``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for row in table["rows"]:
        for column in table["columns"]:
            cell = row["cells"][column]
            decon = cell.get("decontamination") or {}
            values = {
                "task": row["task"],
                "metric": row["metric"],
                "row_spec_hash": row["spec_hash"],
                "column": column,
                "status": cell["status"],
                **{k: cell.get(k) for k in ("value", "stderr", "n", "spec_hash")},
                **{k: decon.get(k) for k in ("contamination", "flagged", "instances")},
            }
            writer.writerow(_csv_value(values[field]) for field in CSV_FIELDS)
    return buffer.getvalue()


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)
