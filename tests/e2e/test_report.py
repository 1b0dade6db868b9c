"""`snakemake --report` on the micro run: one self-contained HTML file whose first view, rendered
by headless Chromium (Debian's `chromium`, background networking off, every host unresolvable),
is the eval table."""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest

from reprolm.htmlreport import OUTPUTS
from reprolm.manifest import verify_payload
from reprolm.plan import load_plan
from tests.integration.apt import ensure_binaries
from tests.support import MICRO, run_snakemake

pytestmark = pytest.mark.slow

# What a browser would fetch from elsewhere: a protocol-relative or http(s) URL in an attribute,
# a CSS url() or an @import (data: URIs and #fragments stay inside the file).
EXTERNAL = re.compile(
    r"""(?:src|href|srcset|action)\s*=\s*["']?\s*(?:https?:)?//"""
    r"""|url\(\s*["']?\s*(?:https?:)?//|@import\s+(?:url\()?\s*["']?\s*(?:https?:)?//""",
    re.I,
)
BORDER = (208, 215, 222)  # reprolm.htmlreport.html's table border colour (#d0d7de)
CHROMIUM = [
    "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--host-resolver-rules=MAP * ~NOTFOUND", "--hide-scrollbars", "--window-size=1400,1000",
    "--virtual-time-budget=15000",
]  # fmt: skip


@pytest.fixture(scope="module")
def report(micro_workspace, tmp_path_factory):
    """The Snakemake report of the micro run (written outside the read-only workspace)."""
    path = tmp_path_factory.mktemp("report") / "report.html"
    run_snakemake(micro_workspace, "--report", str(path))
    return path


def chromium(*args: str) -> subprocess.CompletedProcess:
    ensure_binaries(["chromium"], ["chromium"])
    return subprocess.run(
        [*CHROMIUM, *args], capture_output=True, text=True, timeout=300, check=True
    )


def test_the_workflow_drew_the_pages_and_changed_no_payload(micro_workspace):
    plan = load_plan(micro_workspace / MICRO)
    pages = micro_workspace / "reports" / "micro"
    assert sorted(p.name for p in pages.iterdir()) == sorted(OUTPUTS)
    for job in plan.jobs.values():
        assert verify_payload(micro_workspace / job.artifact_dir) == [], job.key


def test_report_is_one_self_contained_file(report, micro_workspace):
    text = report.read_text(encoding="utf-8")
    assert not EXTERNAL.findall(text)
    for name in ("eval_table.html", "training_curves.svg", "decontamination.html", "jobs.html"):
        assert name in text, f"{name} is not in the report"
    assert "lineage.svg" in text
    size = report.stat().st_size
    assert size < 8 << 20, f"{size} bytes"


def test_first_view_in_chromium_is_the_eval_table(report, micro_workspace, tmp_path):
    dom = chromium("--dump-dom", report.as_uri()).stdout
    table = dom.split('<table class="eval-table">', 1)[1].split("</table>", 1)[0]
    header = table.split("</thead>", 1)[0]
    for checkpoint in ("pretrain", "sft", "dpo", "rlvr"):
        assert f"<th>{checkpoint}</th>" in header
    assert "<td>gsm8k:cot::tulu</td>" in table and "<td>arith_mc</td>" in table
    assert table.count("contam.") >= 4 * 7  # beside every score of every checkpoint
    rows = table.count("<tr>") - 1
    # The same table the pages were drawn with, rendered by the browser, seen on the screen.
    shot = tmp_path / "first-view.png"
    chromium(f"--screenshot={shot}", report.as_uri())
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert (pixels != 255).any(axis=2).mean() > 0.05, "the screenshot is blank"
    border = (pixels == BORDER).all(axis=2)
    runs = [_longest_run(line) for line in border]
    lines = [y for y, run in enumerate(runs) if run > 0.3 * pixels.shape[1]]
    assert len(lines) == rows + 2, f"{len(lines)} table rules seen for {rows} rows"


def _longest_run(line: np.ndarray) -> int:
    best = run = 0
    for value in line:
        run = run + 1 if value else 0
        best = max(best, run)
    return best
