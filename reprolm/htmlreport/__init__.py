"""The run report: the pages and figures ``snakemake --report`` gathers into one HTML file.

Built from finished artifacts on disk (their manifests and saved payload files), read only:
nothing here changes a payload byte, and no model is loaded. :func:`write_report` writes into
one directory (``reports/<recipe>/`` under the workflow's ``report`` rule):

* ``eval_table.html``: tasks x checkpoints, each score with its spec hash and the training data's
  contamination against the task beside it (``evals.table``, the one table of the project);
* ``landing.html``: the same table as a fragment, the first view of the Snakemake report;
* ``training_curves.svg``: loss, learning rate, grad norm, DPO reward margin, RLVR reward;
* ``decontamination.html``: the curate artifact's decontamination summary;
* ``jobs.html``: wall, CPU and peak RSS of every job (from the manifests' ``execution``);
* ``lineage.svg``: the release's lineage graph (``reprolm.lineage``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from reprolm.htmlreport import curves, decontam, evaltable, jobs, lineagesvg
from reprolm.htmlreport.inputs import ReportInputError, Run, load_run

__all__ = ["OUTPUTS", "ReportInputError", "Run", "code_digest", "load_run", "write_report"]

OUTPUTS = (
    "eval_table.html",
    "landing.html",
    "training_curves.svg",
    "decontamination.html",
    "jobs.html",
    "lineage.svg",
)


def write_report(run: Run, output_dir: Path) -> list[Path]:
    """Write every file of :data:`OUTPUTS` for ``run`` into ``output_dir``; return their paths."""
    output_dir.mkdir(parents=True, exist_ok=True)
    table = evaltable.build_table(run)
    texts = {
        "eval_table.html": evaltable.page(run, table),
        "landing.html": evaltable.landing(run, table),
        "training_curves.svg": curves.svg(run),
        "decontamination.html": decontam.page(run),
        "jobs.html": jobs.page(run),
        "lineage.svg": lineagesvg.svg(run),
    }
    written = []
    for name in OUTPUTS:
        path = output_dir / name
        path.write_text(texts[name], encoding="utf-8")
        written.append(path)
    return written


def code_digest() -> str:
    """sha256 over this package's sources: the report rule's param, so that editing the report's
    code redraws the report (and nothing else: it is no job's code)."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()
