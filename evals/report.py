"""The OLMES report: for each task, the rc and the mc number side by side, and the better."""

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
        scored = [(row[f], f) for f in ("rc", "mc") if f in row]
        best, fmt = max(scored, key=lambda pair: pair[0]) if scored else (None, None)
        row["best"], row["best_format"] = best, fmt
    return [table[key] for key in sorted(table)]


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
    return "\n".join(lines)
