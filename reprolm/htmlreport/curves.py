"""Training curves from each training artifact's ``training/log_history.json``.

One SVG, one panel per signal (loss, learning rate, grad norm, DPO reward margin, RLVR reward),
one line per training stage, against the stage's optimizer step. matplotlib's own default style
(not the user's matplotlibrc) through a bare ``Figure`` (no pyplot state, no GUI backend); text
stays text (small, searchable); no date in the file, fixed ids: the same run draws the same bytes.
"""

from __future__ import annotations

import io
from typing import Any

from reprolm.htmlreport.inputs import Run
from reprolm.stagetable import TRAINING_STAGES

LOG_HISTORY = "training/log_history.json"
# (panel title, log-history keys tried in order, stages it applies to: None = every stage)
PANELS: tuple[tuple[str, tuple[str, ...], tuple[str, ...] | None], ...] = (
    ("loss", ("loss",), None),
    ("learning rate", ("learning_rate",), None),
    ("grad norm", ("grad_norm",), None),
    ("DPO reward margin", ("rewards/margins",), ("dpo",)),
    ("RLVR reward", ("reward", "rewards/mean"), ("rlvr",)),
)


def series(history: list[Any], key: str) -> tuple[list[float], list[float]]:
    """(steps, values) of the log-history entries that hold ``key`` as a finite number."""
    steps, values = [], []
    for position, entry in enumerate(history):
        if not isinstance(entry, dict):
            continue
        value = entry.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
            step = entry.get("step")
            steps.append(float(step) if isinstance(step, (int, float)) else float(position + 1))
            values.append(float(value))
    return steps, values


def histories(run: Run) -> dict[str, list[Any]]:
    """Training stage -> its log history (stages without a finished artifact are absent)."""
    found = {}
    for stage in TRAINING_STAGES:
        artifact = run.one(stage)
        history = artifact.json(LOG_HISTORY) if artifact else None
        if isinstance(history, list):
            found[stage] = history
    return found


def curves(run: Run) -> dict[str, dict[str, tuple[list[float], list[float]]]]:
    """Panel title -> stage -> (steps, values): what :func:`svg` draws."""
    logs = histories(run)
    drawn: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    for title, keys, stages in PANELS:
        lines = {}
        for stage, history in logs.items():
            if stages is not None and stage not in stages:
                continue
            for key in keys:
                steps, values = series(history, key)
                if values:
                    lines[stage] = (steps, values)
                    break
        drawn[title] = lines
    return drawn


def svg(run: Run) -> str:
    """The curves as one SVG document."""
    import matplotlib
    import matplotlib.style
    from matplotlib.figure import Figure

    drawn = curves(run)
    colors = {stage: f"C{i}" for i, stage in enumerate(TRAINING_STAGES)}
    with (
        matplotlib.style.context("default"),
        matplotlib.rc_context(
            {"svg.fonttype": "none", "svg.hashsalt": "reprolm-report", "font.size": 8}
        ),
    ):
        fig = Figure(figsize=(12.0, 6.4))
        axes = fig.subplots(2, 3).flatten()
        for ax, (title, lines) in zip(axes, drawn.items(), strict=False):
            ax.set_title(title)
            ax.set_xlabel("optimizer step")
            ax.grid(linewidth=0.3)
            for stage, (steps, values) in lines.items():
                marker = "o" if len(values) < 30 else None
                ax.plot(steps, values, label=stage, color=colors[stage], marker=marker, ms=3)
            if lines:
                ax.legend(fontsize=7, frameon=False)
            else:
                ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes)
        axes[-1].axis("off")
        axes[-1].text(
            0.0,
            0.9,
            f"training curves of {run.name}\nfrom each stage's training/log_history.json",
            va="top",
            transform=axes[-1].transAxes,
        )
        fig.tight_layout()
        out = io.StringIO()
        fig.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()
