"""The release's lineage graph (``reprolm.lineage.build``) drawn as an SVG, sources on the left.

Each node is one artifact (stage, label, fingerprint, digest prefix); each edge an input link.
Columns are the longest path from a source, so every edge points right; within a column
nodes follow the pipeline's stage order. Plain SVG text, no fonts embedded, no script.
"""

from __future__ import annotations

from html import escape

from reprolm.htmlreport.inputs import STAGE_ORDER, Run
from reprolm.lineage import Lineage, Node, build

BOX_W, BOX_H = 160, 48
GAP_X, GAP_Y = 40, 14
MARGIN = 16
TITLE_H = 26
DIGEST_CHARS = 12


def depths(lineage: Lineage) -> dict[str, int]:
    """Node id -> its column: 0 for sources, else one more than its deepest input."""
    found: dict[str, int] = {}

    def depth(key: str, trail: frozenset[str]) -> int:
        if key in found:
            return found[key]
        if key in trail:  # a cycle cannot come from real manifests; draw it rather than recurse
            return 0
        targets = [link.target for link in lineage.nodes[key].links.values() if link.target]
        found[key] = 1 + max((depth(t, trail | {key}) for t in targets), default=-1)
        return found[key]

    for key in lineage.nodes:
        depth(key, frozenset())
    return found


def _rank(node: Node) -> tuple[int, str]:
    stage = node.stage
    return (STAGE_ORDER.index(stage) if stage in STAGE_ORDER else len(STAGE_ORDER), node.label)


def layout(lineage: Lineage) -> dict[str, tuple[int, int]]:
    """Node id -> (x, y) of its box's top-left corner."""
    columns: dict[int, list[Node]] = {}
    for key, column in depths(lineage).items():
        columns.setdefault(column, []).append(lineage.nodes[key])
    placed = {}
    for column, nodes in columns.items():
        for row, node in enumerate(sorted(nodes, key=_rank)):
            x = MARGIN + column * (BOX_W + GAP_X)
            placed[node.id] = (x, MARGIN + TITLE_H + row * (BOX_H + GAP_Y))
    return placed


def _text(x: float, y: float, content: str, cls: str) -> str:
    return f'<text x="{x:.0f}" y="{y:.0f}" class="{cls}">{escape(content)}</text>'


def _message_svg(message: str) -> str:
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" width="520" height="60" viewBox="0 0 520 60">'
        f'<text x="16" y="34" font-family="sans-serif" font-size="14">{escape(message)}</text>'
        "</svg>\n"
    )


def draw(lineage: Lineage, title: str) -> str:
    """The graph as an SVG document."""
    placed = layout(lineage)
    width = max(x for x, _ in placed.values()) + BOX_W + MARGIN
    height = max(y for _, y in placed.values()) + BOX_H + MARGIN
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">',
        "<style>text{font-family:'DejaVu Sans',sans-serif;fill:#1f2328}"
        ".t{font-size:14px;font-weight:bold}.s{font-size:12px;font-weight:bold}"
        ".f{font-size:10px;fill:#57606a;font-family:'DejaVu Sans Mono',monospace}"
        "rect{fill:#f6f8fa;stroke:#57606a}rect.top{fill:#dafbe1;stroke:#1a7f37}"
        "rect.bad{fill:#ffebe9;stroke:#cf222e}path{fill:none;stroke:#8c959f}</style>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" style="fill:#8c959f"/>'
        "</marker></defs>",
        _text(MARGIN, MARGIN + 12, title, "t"),
    ]
    for key, node in sorted(lineage.nodes.items()):
        x1, y1 = placed[key]
        for _, link in sorted(node.links.items()):
            if link.target is None or link.target not in placed:
                continue
            x0, y0 = placed[link.target]
            sx, sy, ex, ey = x0 + BOX_W, y0 + BOX_H / 2, x1, y1 + BOX_H / 2
            mid = (sx + ex) / 2
            parts.append(
                f'<path d="M{sx:.0f},{sy:.0f} C{mid:.0f},{sy:.0f} {mid:.0f},{ey:.0f} '
                f'{ex:.0f},{ey:.0f}" marker-end="url(#arrow)"/>'
            )
    for key, node in sorted(lineage.nodes.items()):
        x, y = placed[key]
        cls = "bad" if node.error else ("top" if key == lineage.top else "")
        digest = str(node.manifest.get("digest") or "")
        name = node.stage if node.label == node.stage else f"{node.stage} / {node.label}"
        parts += [
            f"<g><title>{escape(key)}{' digest ' + escape(digest) if digest else ''}</title>",
            f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="5" class="{cls}"/>',
            _text(x + 8, y + 16, name, "s"),
            _text(x + 8, y + 30, f"fp {node.fingerprint}", "f"),
            _text(x + 8, y + 42, f"digest {digest[:DIGEST_CHARS] or '?'}", "f"),
            "</g>",
        ]
    parts.append("</svg>\n")
    return "\n".join(parts)


def svg(run: Run) -> str:
    """The lineage of the run's release (a one-line SVG saying so when it has none yet)."""
    release = run.one("release")
    if release is None:
        return _message_svg("No release has finished yet: the lineage graph needs one.")
    lineage = build(release.directory)
    return draw(lineage, f"lineage of {release.name}-{release.fingerprint} ({run.name})")
