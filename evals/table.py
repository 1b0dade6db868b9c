"""The one tasks x checkpoints table of evaluate artifacts, and its checkpoint-rows rendering.

:func:`build` reads every result of each evaluate artifact (:func:`evals.collect.evaluate_entries`:
world tasks under their short names, specs under their ids, each with its primary metric) and
arranges them with :func:`evals.compare.build`. Everything that shows evaluation numbers renders
this table: the release's model card and ``comparison/`` files (:func:`evals.compare.markdown`,
``csv_text``, ``evals.plot``), its ``eval_table.md`` and the end-of-run summary
(:func:`checkpoint_markdown`: one row per checkpoint), and ``reprolm eval compare``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evals import collect, compare, steps

MISSING = "–"
MISMATCH = "≠ spec"  # computed under another spec than the row's (the card's notes give it)


def checkpoint_of(source: Path | Mapping[str, Any], label: str) -> str:
    """The checkpoint (stage) an evaluate artifact or ``results.json`` document evaluated."""
    if isinstance(source, Mapping):
        return str(source.get("checkpoint", label))
    if (Path(source) / collect.RESULTS).is_file():
        return collect._checkpoint(Path(source))
    return label


def pipeline_order(checkpoints: Mapping[str, str], order: Sequence[str]) -> list[str]:
    """Labels ordered as the pipeline runs, others last, by label. ``checkpoints``: label ->
    the checkpoint (stage) it evaluated; ``order``: the checkpoint stages in pipeline order
    (job code knows no stage table: the release gets it in its config, the platform's front
    ends pass the stage table's)."""

    def rank(label: str) -> tuple[int, int, str]:
        # A pretraining step (pretrain@step100) comes before its stage's last checkpoint, in
        # step order.
        stage, step = steps.parse(checkpoints[label])
        where = order.index(stage) if stage in order else len(order)
        return (where, step if step is not None else 2**62, label)

    return sorted(checkpoints, key=rank)


def build(
    evals: Mapping[str, Path | Mapping[str, Any]],
    order: Sequence[str],
    external: Mapping[str, Path] | None = None,
) -> dict[str, Any]:
    """The comparison table of evaluate artifacts (label -> artifact dir, or a ``results.json``
    document), columns in pipeline order (``order``: the checkpoint stages); ``external``: score
    artifacts of responses produced outside the recipe (label -> dir), extra columns after the
    recipe's own, marked external."""
    order = pipeline_order(
        {label: checkpoint_of(src, label) for label, src in evals.items()}, order
    )
    entries = []
    for label in order:
        source = evals[label]
        if isinstance(source, Mapping):
            entries += collect.world_entries(dict(source), label)
        else:
            entries += collect.evaluate_entries(Path(source), label)
    outside = sorted(external or {})
    clash = sorted(set(outside) & set(order))
    if clash:
        raise ValueError(
            f"external column(s) {clash} are named like the recipe's checkpoints; rename the "
            "evaluate.external entries"
        )
    for label in outside:
        entries += collect.evaluate_entries(Path(external[label]), label)
    return compare.build(entries, [*order, *outside], external=outside)


def checkpoint_markdown(table: dict[str, Any]) -> str:
    """One row per column of the table (a checkpoint), one column per task (primary metric):
    ``| checkpoint | arith_gen (exact_match) | ... |``, values to 3 decimals, ``–`` where a
    checkpoint was not evaluated on the task, ``≠ spec`` where under another spec."""
    rows = table["rows"]
    header = "| checkpoint | " + " | ".join(f"{r['task']} ({r['metric']})" for r in rows) + " |"
    lines = [header, "|---|" + "---:|" * len(rows)]
    for column in table["columns"]:
        cells = []
        for row in rows:
            cell = row["cells"][column]
            if cell["status"] == compare.OK:
                cells.append(f"{cell['value']:.3f}")
            else:
                cells.append(MISMATCH if cell["status"] == compare.MISMATCH else MISSING)
        lines.append(f"| {column} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def curve_points(
    table: dict[str, Any], last_steps: Mapping[str, int] | None = None
) -> dict[str, list[tuple[int, float]]]:
    """Score vs pretraining step per row (``task (metric)``): one point per column naming a step
    (``pretrain@step100`` or its label ``pretrain_step100``), plus the ``pretrain`` column at
    ``last_steps["pretrain"]`` (the pretrain job's ``steps``) when given. Rows without a step
    column are left out; cells not comparable (``≠ spec``) or missing give no point."""
    at: dict[str, int] = {}
    for column in table["columns"]:
        step = steps.parse(column)[1]
        if step is not None:
            at[column] = step
    if not at:
        return {}
    for column in table["columns"]:
        if column in (last_steps or {}) and column not in at:
            at[column] = int(last_steps[column])
    curves: dict[str, list[tuple[int, float]]] = {}
    for row in table["rows"]:
        points = sorted(
            (step, float(row["cells"][column]["value"]))
            for column, step in at.items()
            if row["cells"][column]["status"] == compare.OK
        )
        if points:
            curves[f"{row['task']} ({row['metric']})"] = points
    return curves
