"""Write a Page as one self-contained HTML document. Only HTML here: no statistics, no file access.

Every string that can come from a trace (file names, model and client names, statements) goes
through `esc`; chart specs are embedded once as JSON with `<` escaped.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field

from servetrace.report.assets import CHART_CONFIG, CSS, EMBED_SCRIPT, script_json, vega_bundle
from servetrace.report.figures import Figure
from servetrace.report.sections import Section, Table
from servetrace.report.summary import KeyFinding, Num


@dataclass
class Page:
    title: str
    subtitle: str
    trace: list[tuple[str, Num | str]]
    key_findings: list[KeyFinding]
    sections: list[Section]
    summary_tables: list[Table] = field(default_factory=list)
    footer: str = ""


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def num_html(n: Num) -> str:
    return (f'<span class="num" data-key="{esc(n.path)}" data-value="{esc(json.dumps(n.value))}">'
            f"{esc(n.text)}</span>")


def segment_html(seg) -> str:
    return num_html(seg) if isinstance(seg, Num) else esc(seg)


def table_html(t: Table) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in t.header)
    rows = "".join("<tr>" + "".join(f"<td>{segment_html(c)}</td>" for c in row) + "</tr>" for row in t.rows)
    return f"<table><caption>{esc(t.caption)}</caption><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def figure_html(fig: Figure, number: int, section_key: str) -> str:
    fid = f"fig-{section_key}-{fig.key}"
    if fig.spec is None:
        return f'<p class="note" id="{esc(fid)}">{esc(fig.title)}: not in this trace: {esc(fig.missing)}</p>'
    caption = f"<b>Figure {number}.</b> {esc(fig.title)}. {esc(fig.caption)}"
    return (f'<figure id="{esc(fid)}"><div class="chart" data-figure="{esc(fid)}"></div>'
            f"<figcaption>{caption}</figcaption></figure>")


def section_html(sec: Section, index: int, counter: list[int], specs: dict) -> str:
    parts = [f'<section id="{esc(sec.key)}"><h2><span class="n">{index}</span>{esc(sec.title)}</h2>']
    if sec.text:
        parts.append(f'<p class="intro">{esc(sec.text)}</p>')
    if sec.absent:
        parts.append(f'<p class="note">Not in this trace: {esc(sec.absent)}</p></section>')
        return "".join(parts)
    if sec.statements:
        parts.append("<ul class=statements>" + "".join(f"<li>{esc(s)}</li>" for s in sec.statements) + "</ul>")
    drawn = [f for f in sec.figures if f.spec is not None]
    if drawn:
        wide = " wide" if any(f.key.startswith("side-") for f in drawn) else ""
        cells = []
        for fig in drawn:
            counter[0] += 1
            specs[f"fig-{sec.key}-{fig.key}"] = fig.spec
            cells.append(figure_html(fig, counter[0], sec.key))
        parts.append(f'<div class="figures{wide}">' + "".join(cells) + "</div>")
    parts += [figure_html(f, 0, sec.key) for f in sec.figures if f.spec is None]
    parts += [table_html(t) for t in sec.tables]
    parts += [f'<p class="code-caption">{esc(caption)}</p><pre><code>{esc(text)}</code></pre>' for caption, text in sec.code]
    parts += [f"<details><summary>{esc(summary)}</summary><p>{esc(text)}</p></details>" for summary, text in sec.details]
    if sec.facts:
        rows = "".join(f"<tr><td><code>{esc(k)}</code></td><td class=v>{esc(v)}</td></tr>" for k, v in sec.facts)
        parts.append(f"<details><summary>All numbers in this section ({len(sec.facts)})</summary>"
                     f"<table><tbody>{rows}</tbody></table></details>")
    parts.append("</section>")
    return "".join(parts)


def summary_html(page: Page) -> str:
    trace = "".join(f"<div><dt>{esc(label)}</dt><dd>{segment_html(v)}</dd></div>" for label, v in page.trace)
    items = "".join(f'<li><a href="#{esc(k.section)}">' + "".join(segment_html(s) for s in k.segments) + "</a></li>"
                    for k in page.key_findings)
    abstract = f'<div class="abstract" id="summary"><h2>Key findings</h2><ol>{items}</ol></div>' if items else ""
    tables = "".join(table_html(t) for t in page.summary_tables)
    toc = "".join(f'<li><a href="#{esc(s.key)}">{esc(s.title)}</a></li>' for s in page.sections)
    return (f'<header><h1>{esc(page.title)}</h1><p class="subtitle">{esc(page.subtitle)}</p>'
            f'<dl class="trace" id="trace">{trace}</dl></header>{abstract}{tables}'
            f'<nav class="toc"><ol>{toc}</ol></nav>')


def render(page: Page) -> str:
    specs: dict = {}
    counter = [0]
    body = "".join(section_html(s, i, counter, specs) for i, s in enumerate(page.sections, 1))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        # The page loads nothing from anywhere: inline scripts and styles, data: images only.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; img-src data:; font-src data:\">"
        f"<title>{esc(page.title)}</title><style>{CSS}</style></head>"
        f"<body><main>{summary_html(page)}{body}<footer>{esc(page.footer)}</footer></main>"
        f'<script type="application/json" id="servetrace-specs">{script_json(specs)}</script>'
        f'<script type="application/json" id="servetrace-chart-config">{script_json(CHART_CONFIG)}</script>'
        f"<script>{vega_bundle()}</script><script>{EMBED_SCRIPT}</script></body></html>\n"
    )
