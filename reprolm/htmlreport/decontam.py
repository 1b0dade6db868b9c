"""The decontamination summary of the curate artifact (decontamination.json, curation.json)."""

from __future__ import annotations

from typing import Any

from reprolm.htmlreport import html
from reprolm.htmlreport.inputs import Artifact, Run, mapping

DECONTAMINATION = "decontamination.json"
CURATION = "curation.json"
# curation.json's per-kind counters, in the order documents pass them
FLOW = (
    ("documents_in", "in"),
    ("rejected", "rejected"),
    ("empty", "empty"),
    ("filtered", "filtered"),
    ("exact_duplicate", "exact dup."),
    ("fuzzy_duplicate", "near dup."),
    ("decontaminated", "decontaminated"),
    ("mixed_out", "mixed out"),
    ("documents_out", "out"),
)


def _number(value: Any) -> str:
    return html.text("–" if value is None else value)


def eval_set_rows(record: dict[str, Any]) -> list[list[str]]:
    """One row per eval set and spec dataset: instances, flagged, share, documents removed."""
    removed = mapping(record.get("removed_per_eval_set"))
    rows = []
    for group, kind in (("eval_sets", "world eval set"), ("spec_sets", "spec dataset")):
        for name, entry in sorted(mapping(record.get(group)).items()):
            if not isinstance(entry, dict):
                continue
            share = entry.get("contamination")
            share_text = "–" if not isinstance(share, (int, float)) else f"{100 * share:.1f}%"
            by_kind = mapping(removed.get(name))
            removed_text = ", ".join(f"{k}: {v}" for k, v in sorted(by_kind.items())) or "none"
            rows.append(
                [
                    html.cell(html.text(name)),
                    html.cell(kind),
                    html.cell(_number(entry.get("instances")), numeric=True),
                    html.cell(_number(entry.get("flagged")), numeric=True),
                    html.cell(share_text, numeric=True),
                    html.cell(html.text(removed_text)),
                ]
            )
    return rows


def flow_rows(curation: dict[str, Any]) -> list[list[str]]:
    """One row per data kind: documents in, each removal, documents out."""
    rows = []
    for kind, counts in sorted(curation.items()):
        if not isinstance(counts, dict) or "documents_in" not in counts:
            continue
        rows.append(
            [html.cell(html.text(kind))]
            + [html.cell(_number(counts.get(key)), numeric=True) for key, _ in FLOW]
        )
    return rows


def body(curate: Artifact | None) -> str:
    if curate is None:
        return '<p class="note">No curate artifact has finished yet.</p>'
    record = mapping(curate.json(DECONTAMINATION))
    curation = mapping(curate.json(CURATION))
    ngram, threshold = record.get("ngram", "?"), record.get("threshold", "?")
    out = (
        f'<p class="note">From <code>{html.text(curate.directory)}</code>: every eval set and '
        f"spec dataset against the curated training data, {html.text(ngram)}-gram overlap; a "
        f"training document covering at least {html.text(threshold)} of an instance's "
        "n-grams matches it; <b>flagged</b>: the instances some training document matched "
        "(those documents are removed unless <code>curate.decontaminate</code> is false).</p>"
    )
    out += "<h2>Eval sets</h2>" + html.table(
        ["eval set", "kind", "instances", "flagged", "contamination", "documents removed"],
        eval_set_rows(record),
    )
    out += "<h2>Documents per data kind</h2>" + html.table(
        ["kind", *(title for _, title in FLOW)], flow_rows(curation)
    )
    return out


def page(run: Run) -> str:
    content = f"<h1>Decontamination: {html.text(run.name)}</h1>" + body(run.one("curate"))
    return html.page(f"reprolm {run.name}: decontamination", content)
