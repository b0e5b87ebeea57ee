"""Write a Page as one self-contained HTML document from reports/templates/report.html.j2.
Only layout here: no statistics, no file access.

Every string that can come from a trace (file names, model and client names, statements) is
escaped by the template (autoescape); chart specs are embedded once as JSON with `<` escaped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from markupsafe import Markup

from servetrace.report.assets import CHART_CONFIG, EMBED_SCRIPT, script_json, vega_bundle
from servetrace.report.sections import Section, Table
from servetrace.report.summary import KeyFinding, Num
from servetrace.report.templates import render_page, style


@dataclass
class Page:
    title: str
    subtitle: str
    trace: list[tuple[str, Num | str]]
    key_findings: list[KeyFinding]
    sections: list[Section]
    summary_tables: list[Table] = field(default_factory=list)
    footer: str = ""


def _numbered(sections: list[Section]) -> tuple[list[dict], dict]:
    """Each section with its drawn figures numbered through the page, and every spec by figure id."""
    views, specs, number = [], {}, 0
    for sec in sections:
        drawn, missing = [], []
        for fig in sec.figures:
            fid = f"fig-{sec.key}-{fig.key}"
            if fig.spec is None:
                missing.append((fid, fig))
            elif not sec.absent:
                number += 1
                specs[fid] = fig.spec
                drawn.append((number, fid, fig))
        views.append({"section": sec, "drawn": drawn, "missing": missing,
                      "wide": any(f.key.startswith("side-") for _, _, f in drawn)})
    return views, specs


def render(page: Page) -> str:
    views, specs = _numbered(page.sections)
    return render_page("report.html.j2", title=page.title, css=style("report"), page=page, sections=views,
                       specs_json=Markup(script_json(specs)), config_json=Markup(script_json(CHART_CONFIG)),
                       vega=Markup(vega_bundle()), embed=Markup(EMBED_SCRIPT))
