"""Per-job wall time, CPU time and peak RSS, from each manifest's ``execution`` record."""

from __future__ import annotations

from typing import Any

from reprolm.htmlreport import html
from reprolm.htmlreport.inputs import Run

BAR_PX = 160


def _seconds(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def records(run: Run) -> list[dict[str, Any]]:
    """One record per artifact: name, wall/CPU seconds, peak RSS (MB), host, start time."""
    out = []
    for artifact in run.artifacts:
        execution = artifact.manifest.get("execution") or {}
        if not isinstance(execution, dict):
            execution = {}
        out.append(
            {
                "job": artifact.name,
                "fingerprint": artifact.fingerprint,
                "wall_seconds": _seconds(execution.get("wall_seconds")),
                "cpu_seconds": _seconds(execution.get("cpu_seconds")),
                "peak_rss_mb": _seconds(execution.get("peak_rss_mb")),
                "host": execution.get("host"),
                "started": execution.get("started"),
            }
        )
    return out


def _bar(value: float | None, largest: float) -> str:
    if value is None or largest <= 0:
        return ""
    return f'<span class="bar" style="width:{max(1, round(BAR_PX * value / largest))}px"></span>'


def _fmt(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def page(run: Run) -> str:
    rows = records(run)
    walls = [r["wall_seconds"] for r in rows if r["wall_seconds"] is not None]
    largest = max(walls, default=0.0)
    table_rows = [
        [
            html.cell(html.text(r["job"]), title=r["fingerprint"]),
            html.cell(_fmt(r["wall_seconds"]), numeric=True),
            html.cell(_bar(r["wall_seconds"], largest)),
            html.cell(_fmt(r["cpu_seconds"]), numeric=True),
            html.cell(_fmt(r["peak_rss_mb"], 0), numeric=True),
            html.cell(html.text(r["host"] or "–")),
            html.cell(html.text(r["started"] or "–")),
        ]
        for r in rows
    ]
    total_wall = sum(walls)
    total_cpu = sum(r["cpu_seconds"] or 0.0 for r in rows)
    body = (
        f"<h1>Jobs: {html.text(run.name)}</h1>"
        '<p class="note">Measured by the job runner in each job process and recorded in its '
        "manifest (<code>execution</code>): wall-clock seconds, CPU seconds of the job process, "
        "peak resident set size. A job reused from an earlier run shows that run's figures. "
        f"Total: {_fmt(total_wall)} s wall, {_fmt(total_cpu)} s CPU over {len(rows)} jobs.</p>"
        + html.table(["job", "wall s", "", "CPU s", "peak RSS MB", "host", "started"], table_rows)
    )
    return html.page(f"reprolm {run.name}: jobs", body)
