"""The eval table: tasks x checkpoints, the spec hash of each row, contamination beside each score.

The numbers come from the project's one comparison table (``evals.table.build``, imported for
display only, as ``reprolm summary`` does); this module only renders it as HTML.
"""

from __future__ import annotations

from typing import Any

from reprolm.htmlreport import html
from reprolm.htmlreport.inputs import ReportInputError, Run, mapping
from reprolm.stagetable import CHECKPOINT_STAGES

EVAL_RESULTS = "results.json"
DECONTAMINATION = "decontamination.json"
EXTERNAL = "external.json"  # a score artifact: responses produced outside the recipe
HASH_CHARS = 8
# The Snakemake report shows its workflow description in a narrow column ("max-w-lg"): the
# landing fragment widens that one column so the table fits.
LANDING_CSS = "<style>.prose.max-w-lg{max-width:none}</style>"


def build_table(run: Run) -> dict[str, Any] | None:
    """The comparison table of the run's finished evaluations (None: none finished)."""
    evals = {
        a.label: a.directory
        for a in run.stage("evaluate")
        if (a.directory / EVAL_RESULTS).is_file()
    }
    external = {
        a.label: a.directory for a in run.stage("score") if (a.directory / EXTERNAL).is_file()
    }
    if not evals and not external:
        return None
    from evals.table import build

    try:
        table = build(evals, CHECKPOINT_STAGES, external)
    except (OSError, ValueError, KeyError, TypeError) as error:  # a malformed results.json
        raise ReportInputError(f"an evaluate artifact of {run.name}: {error}") from None
    curate = run.one("curate")
    record = curate.json(DECONTAMINATION) if curate else None
    if isinstance(record, dict):
        fill_world_contamination(table, record)
    return table


def fill_world_contamination(table: dict[str, Any], record: dict[str, Any]) -> None:
    """Give world-task cells without a figure the curate artifact's one for that eval set.

    The evaluate job records the figure only for spec tasks; for the world's eval sets it is in
    ``decontamination.json`` (``eval_sets``), one figure per set, the same for every checkpoint
    (all trained on the one curated data)."""
    eval_sets = mapping(record.get("eval_sets"))
    for row in table["rows"]:
        found = eval_sets.get(row["task"]) if row["spec_hash"] is None else None
        if not isinstance(found, dict) or not isinstance(found.get("contamination"), (int, float)):
            continue
        figure = {k: found.get(k) for k in ("contamination", "flagged", "instances")}
        for cell in row["cells"].values():
            if cell["status"] != "missing" and cell.get("decontamination") is None:
                cell["decontamination"] = figure


def _contamination(record: dict[str, Any] | None) -> str:
    if record is None:
        return '<span class="contam">contam. –</span>'
    share = record["contamination"]
    shown = f"contam. {100 * share:.1f}%"
    if record.get("flagged") is not None and record.get("instances") is not None:
        shown += f" ({record['flagged']}/{record['instances']})"
    cls = "contam hit" if share > 0 else "contam"
    return f'<span class="{cls}">{html.text(shown)}</span>'


def _score(cell: dict[str, Any]) -> str:
    if cell["status"] == "missing":
        return html.cell('<span class="missing">–</span>', numeric=True)
    if cell["status"] == "spec_mismatch":
        spec = (cell.get("spec_hash") or "")[:HASH_CHARS]
        return html.cell(
            f'<span class="missing">≠ spec</span><span class="contam">{html.text(spec)}</span>',
            numeric=True,
            title=f"{cell['value']:.3f} under another spec ({cell.get('spec_hash')})",
        )
    value = f'<span class="score">{cell["value"]:.3f}</span>'
    if cell.get("stderr") is not None:
        value += f" ± {cell['stderr']:.3f}"
    return html.cell(value + _contamination(cell.get("decontamination")), numeric=True)


def table_html(table: dict[str, Any] | None) -> str:
    """The table (or a sentence saying no evaluation finished)."""
    if table is None:
        return '<p class="note">No evaluation has finished yet: run the workflow first.</p>'
    columns = table["columns"]
    rows = []
    for row in table["rows"]:
        spec = row["spec_hash"]
        spec_cell = (
            html.cell(f'<span class="hash">{html.text(spec[:HASH_CHARS])}</span>', title=spec)
            if spec
            else html.cell('<span class="missing">world set</span>')
        )
        n = row["n"]
        rows.append(
            [
                html.cell(html.text(row["task"])),
                html.cell(html.text(row["metric"])),
                spec_cell,
                html.cell(html.text("–" if n is None else n), numeric=True),
                *(_score(row["cells"][column]) for column in columns),
            ]
        )
    external = set(table.get("external", ()))
    titles = [f"{c} (external)" if c in external else c for c in columns]
    out = html.table(["task", "metric", "spec", "n", *titles], rows, cls="eval-table")
    if table["notes"]:
        out += "<ul>" + "".join(f"<li>{html.text(note)}</li>" for note in table["notes"]) + "</ul>"
    return out


LEGEND = (
    '<p class="note">One column per checkpoint, one row per task (primary metric). '
    "<b>spec</b>: the hash of the task's resolved spec (prompt, shots, split, metric); a score "
    "computed under another spec shows ≠ spec. <b>contam.</b>: the share of the task's "
    "instances the 8-gram scan of curation flagged in the training data (flagged/instances; "
    "the matching documents were removed, see Decontamination): spec tasks as their evaluate "
    "job recorded it, the world's eval sets from the curate artifact. A column marked "
    "<b>(external)</b> scores responses produced outside the recipe (evaluate.external): "
    "<code>reprolm audit</code> of its score artifact shows what produced them.</p>"
)


def step_curves(run: Run, table: dict[str, Any] | None) -> dict[str, list[tuple[int, float]]]:
    """Score vs pretraining step per task, when the run evaluated intermediate checkpoints
    (``pretrain@step<N>``); the final ``pretrain`` column at the pretrain job's ``steps``."""
    if table is None:
        return {}
    from evals.table import curve_points

    pretrain = run.one("pretrain")
    steps = (pretrain.manifest.get("config") or {}).get("steps") if pretrain else None
    return curve_points(table, {"pretrain": steps} if isinstance(steps, int) else None)


def curve_svg(points: dict[str, list[tuple[int, float]]]) -> str:
    """The curves as an inline SVG (no XML header; fixed ids, no date: same bytes every run)."""
    import io

    import matplotlib
    import matplotlib.style

    from evals.plot import curve_figure

    with (
        matplotlib.style.context("default"),
        matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "reprolm-report"}),
    ):
        out = io.StringIO()
        curve_figure(points).savefig(out, format="svg", metadata={"Date": None})
    text = out.getvalue()
    return text[text.index("<svg") :]


def curves_html(run: Run, table: dict[str, Any] | None) -> str:
    """The score-vs-step section ('' when the run evaluated no intermediate step)."""
    points = step_curves(run, table)
    if not points:
        return ""
    return (
        "<h2>Score vs pretraining step</h2>"
        '<p class="note">One line per task (primary metric), one point per evaluated '
        "pretraining step (evaluate.checkpoints: pretrain@step&lt;N&gt;) and the last one.</p>"
        + curve_svg(points)
    )


def page(run: Run, table: dict[str, Any] | None) -> str:
    body = (
        f"<h1>Evaluation: {html.text(run.name)}</h1>"
        + LEGEND
        + table_html(table)
        + curves_html(run, table)
    )
    return html.page(f"reprolm {run.name}: evaluation", body)


def landing(run: Run, table: dict[str, Any] | None) -> str:
    """The first view of the Snakemake report: the eval table, then where the rest is."""
    body = (
        f"<h2>Eval scores per checkpoint ({html.text(run.name)})</h2>" + table_html(table) + LEGEND
    )
    return LANDING_CSS + html.fragment(body)
