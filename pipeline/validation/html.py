"""A small self-contained HTML page: escaped tables and altair charts, Vega inlined (no network)."""

from __future__ import annotations

import html
from typing import Any, Sequence

from servetrace.report.assets import script_json, vega_bundle

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
.pass { color: #1a7f37; font-weight: 600; } .fail { color: #c62828; font-weight: 600; }
.skip { color: #777; } .chart { margin: 1.5em 0; } p.note { color: #555; }
"""


def table_html(header: Sequence[str], rows: Sequence[Sequence[Any]], classes: Sequence[str] | None = None) -> str:
    """An HTML table; every cell is escaped (values may come from the trace)."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{html.escape(classes[i])}"' if classes and classes[i] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "pass" if v else "fail"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def page_html(title: str, blocks: Sequence[Any]) -> str:
    """`blocks`: HTML strings (already escaped) or altair charts, in page order."""
    parts, scripts = [], []
    for i, block in enumerate(blocks):
        if isinstance(block, str):
            parts.append(block)
        else:
            parts.append(f'<div class="chart" id="chart{i}"></div>')
            scripts.append(f"vegaEmbed('#chart{i}', {script_json(block.to_dict())}, {{actions: false}})"
                           ".catch(console.error);")
    bundle = vega_bundle() if scripts else ""
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"UTF-8\"><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style><script>{bundle}</script></head><body>"
            f"<h1>{html.escape(title)}</h1>{''.join(parts)}<script>{''.join(scripts)}</script></body></html>\n")


def h2(text: str) -> str:
    return f"<h2>{html.escape(text)}</h2>"


def note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'
