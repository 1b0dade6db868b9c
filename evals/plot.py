"""The comparison plot: grouped bars, one group per task, one bar per column.

Written byte-identically on every run (the release stage is bitwise reproducible): matplotlib's
own default style (not the user's matplotlibrc), the Agg renderer through a bare ``Figure`` (no
pyplot global state or GUI backend), fixed size and dpi, bundled DejaVu fonts, and no
``Software`` text chunk in the PNG (matplotlib's version would otherwise be in it). Agg writes
no date into PNGs. The bytes do depend on the matplotlib (and its bundled FreeType) version,
which every manifest records.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evals.compare import MISMATCH, OK

DPI = 100


def write_plot(table: dict[str, Any], path: Path) -> Path:
    """Draw ``table`` (from :func:`evals.compare.build`) as a PNG at ``path``."""
    import matplotlib.style
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    columns, rows = table["columns"], table["rows"]
    width = 0.8 / max(len(columns), 1)
    with matplotlib.style.context("default"):
        width_in = 1.2 + 0.9 * len(rows) * max(len(columns), 1) ** 0.5
        fig = Figure(figsize=(min(max(4.0, width_in), 16.0), 3.6))
        ax = fig.add_subplot()
        for i, column in enumerate(columns):
            xs, ys, errs = [], [], []
            for x, row in enumerate(rows):
                cell = row["cells"][column]
                at = x + (i - (len(columns) - 1) / 2) * width
                if cell["status"] == OK:  # missing cells get no bar
                    xs.append(at)
                    ys.append(cell["value"])
                    errs.append(cell["stderr"] or 0.0)
                elif cell["status"] == MISMATCH:  # as in the table: no number, a mark
                    ax.text(at, 0, "≠spec", rotation=90, ha="center", va="bottom", fontsize=6)
            yerr = errs if any(errs) else None
            ax.bar(xs, ys, width, yerr=yerr, color=f"C{i % 10}", capsize=2)
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels(
            [f"{row['task']}\n{row['metric']}" for row in rows], rotation=30, ha="right", fontsize=7
        )
        ax.set_ylabel("primary metric")
        ax.set_ylim(bottom=0)
        ax.legend(  # explicit handles: a column without any bar still gets its own swatch
            handles=[Patch(color=f"C{i % 10}", label=c) for i, c in enumerate(columns)],
            fontsize=7,
            ncols=min(len(columns), 4) or 1,
            loc="lower center",
            bbox_to_anchor=(0.5, 1.0),
            frameon=False,
        )
        ax.grid(axis="y", linewidth=0.3)
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png", dpi=DPI, metadata={"Software": None})
    return path


def curve_figure(points: dict[str, list[tuple[int, float]]]) -> Any:
    """Score vs pretraining step, one line per task (``evals.table.curve_points``), as a bare
    matplotlib ``Figure`` (call inside ``matplotlib.style.context("default")``)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 3.6))
    ax = fig.add_subplot()
    for i, (task, series) in enumerate(sorted(points.items())):
        xs, ys = zip(*series, strict=True)
        ax.plot(xs, ys, marker="o", ms=3, color=f"C{i % 10}", label=task)
    ax.set_xlabel("pretraining step")
    ax.set_ylabel("primary metric")
    ax.set_ylim(bottom=0)
    ax.grid(linewidth=0.3)
    if points:
        ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return fig


def write_curve(points: dict[str, list[tuple[int, float]]], path: Path) -> Path:
    """Draw the score-vs-step curves as a PNG at ``path`` (same bytes every run, as above)."""
    import matplotlib.style

    with matplotlib.style.context("default"):
        fig = curve_figure(points)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png", dpi=DPI, metadata={"Software": None})
    return path
