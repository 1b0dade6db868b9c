"""The OLMES report: for each task, the rc and the mc number side by side, and the better.

OLMES reports each multiple-choice task in the format that scores higher (its primary metric
in each), ties going to rc (the reference's ``combine_metrics`` sorts ``[rc, mc]`` by score,
stably), and the OLMES average as the mean of those per-task scores (MMLU counting once, as the
macro average over its subjects).
"""

from __future__ import annotations

from typing import Any

from evals.spec import parse_id


def compare_formats(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows ``{task, regime, rc, mc, best, best_format}`` (primary metric of each format)."""
    table: dict[tuple[str, str], dict[str, Any]] = {}
    for result in results:
        task, fmt, regime = parse_id(result["task_id"])
        row = table.setdefault((task, regime), {"task": task, "regime": regime})
        row[fmt] = result["primary"]
        row[f"{fmt}_metric"] = result["primary_metric"]
        row[f"{fmt}_spec_hash"] = result["spec_hash"]
    for row in table.values():
        row["best"], row["best_format"] = best_format({f: row[f] for f in ("rc", "mc") if f in row})
    return [table[key] for key in sorted(table)]


def best_format(scores: dict[str, float]) -> tuple[float | None, str | None]:
    """(the better primary score, its format) of ``{"rc": x, "mc": y}`` (either may be
    missing); rc wins a tie, as in OLMES."""
    scored = [(scores[f], f) for f in ("rc", "mc") if f in scores]
    if not scored:
        return None, None
    return max(scored, key=lambda pair: pair[0])  # max keeps the first (rc) on ties


def olmes_average(rows: list[dict[str, Any]]) -> float | None:
    """The mean of the tasks' best scores (None unless every task has both formats)."""
    if not rows or any("rc" not in r or "mc" not in r for r in rows):
        return None
    return sum(r["best"] for r in rows) / len(rows)


def markdown(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of :func:`compare_formats` rows."""

    def cell(row: dict, fmt: str) -> str:
        if fmt not in row:
            return "-"
        return f"{row[fmt]:.4f} ({row[fmt + '_metric']}, {row[fmt + '_spec_hash'][:8]})"

    lines = ["| task | regime | rc | mc | best |", "|---|---|---|---|---|"]
    for row in rows:
        best = "-" if row["best"] is None else f"{row['best']:.4f} ({row['best_format']})"
        lines.append(
            f"| {row['task']} | {row['regime']} | {cell(row, 'rc')} | {cell(row, 'mc')} | {best} |"
        )
    average = olmes_average(rows)
    if average is not None:
        lines.append(f"\naverage of the best scores ({len(rows)} tasks): {average:.4f}")
    return "\n".join(lines)
