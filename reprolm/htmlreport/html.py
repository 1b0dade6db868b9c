"""Self-contained HTML pages: inline CSS, no script, no external reference."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

# Scoped to .reprolm so a fragment embedded in the Snakemake report changes nothing around it.
CSS = """
.reprolm { font-family: system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif;
  font-size: 14px; color: #1f2328; }
.reprolm h1 { font-size: 20px; margin: 0 0 4px; }
.reprolm h2 { font-size: 16px; margin: 18px 0 6px; }
.reprolm p.note { color: #57606a; margin: 4px 0 10px; max-width: 60em; }
.reprolm table { border-collapse: collapse; margin: 6px 0 12px; }
.reprolm th, .reprolm td { border: 1px solid #d0d7de; padding: 4px 8px; vertical-align: top; }
.reprolm th { background: #f6f8fa; text-align: left; font-weight: 600; }
.reprolm td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.reprolm code, .reprolm .hash { font-family: "DejaVu Sans Mono", monospace; font-size: 12px; }
.reprolm .score { font-weight: 600; }
.reprolm .contam { display: block; font-size: 11px; color: #57606a; }
.reprolm .contam.hit { color: #b35900; }
.reprolm .missing { color: #8c959f; }
.reprolm .bar { display: inline-block; height: 10px; background: #4c78a8; vertical-align: middle; }
"""


def text(value: object) -> str:
    return escape(str(value), quote=True)


def table(header: Sequence[str], rows: Iterable[Sequence[str]], cls: str = "") -> str:
    """An HTML table; ``header`` is escaped, row cells are HTML already (``<td ...>...</td>``)."""
    head = "".join(f"<th>{text(h)}</th>" for h in header)
    body = "".join(f"<tr>{''.join(row)}</tr>" for row in rows)
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def cell(content: str, numeric: bool = False, title: str = "") -> str:
    """A ``<td>`` holding ``content`` (HTML); ``title``: hover text (escaped)."""
    attrs = ' class="num"' if numeric else ""
    attrs += f' title="{text(title)}"' if title else ""
    return f"<td{attrs}>{content}</td>"


def fragment(body: str) -> str:
    """``body`` with the report's scoped style, to embed in another page."""
    return f'<style>{CSS}</style>\n<div class="reprolm">\n{body}\n</div>\n'


def page(title: str, body: str) -> str:
    """A standalone HTML5 page."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{text(title)}</title><style>{CSS}</style></head>\n"
        f'<body class="reprolm">\n{body}\n</body></html>\n'
    )
