"""The blocks of the fidelity and provision pages (reports/templates/run.html.j2): headings, notes,
tables and Vega-Lite charts, in page order. Values are formatted here and escaped by the template."""

from __future__ import annotations

from typing import Any, Sequence

from markupsafe import Markup

from servetrace.report import specs as vl
from servetrace.report.assets import script_json, vega_bundle
from servetrace.report.templates import render_page, style


def table_html(header: Sequence[str], rows: Sequence[Sequence[Any]], classes: Sequence[str] | None = None) -> dict:
    """A table block; `classes`: one CSS class per row (pass / fail / skip) or None."""
    return {"kind": "table", "header": list(header), "rows": [[_fmt(v) for v in row] for row in rows],
            "classes": list(classes) if classes else None}


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "pass" if v else "fail"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def page_html(title: str, blocks: Sequence[Any]) -> str:
    """`blocks`: dicts made by `h2`, `note`, `table_html` (each with its `kind`), or chart specs
    (report/specs.py), in page order."""
    shown, charts = [], []
    for i, block in enumerate(blocks):
        if "kind" in block:
            shown.append(block)
        else:
            shown.append({"kind": "chart", "id": f"chart{i}"})
            charts.append((f"chart{i}", Markup(script_json(vl.top_level(block)))))
    return render_page("run.html.j2", title=title, css=style("run"), blocks=shown, charts=charts,
                       vega=Markup(vega_bundle()) if charts else "")


def h2(text: str) -> dict:
    return {"kind": "heading", "text": text}


def note(text: str) -> dict:
    return {"kind": "note", "text": text}
