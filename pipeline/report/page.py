"""One trace's report page: header, key findings, a section per area, run outputs, and a citeable record."""

from __future__ import annotations

import functools
import importlib.metadata as md
import json

from servetrace.report.inputs import ReportInputs
from servetrace.report.render import Page
from servetrace.report.runs import run_sections
from servetrace.report.sections import Section, Table, finding_sections
from servetrace.report.specs import VEGA_LITE
from servetrace.report.summary import key_findings, trace_line
from servetrace.report.values import fmt_number, lookup


@functools.cache
def _version(dist: str) -> str:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return "—"


def report_versions(findings: dict) -> dict[str, str]:
    """Versions the findings record, plus what drew this page."""
    recorded = findings.get("versions") if isinstance(findings.get("versions"), dict) else {}
    drawn = {"servetrace": _version("servetrace"), "vega-lite": f"v{VEGA_LITE}",
             "vl-convert-python": _version("vl-convert-python")}
    return {**{k: str(v) for k, v in recorded.items()}, **{f"{k} (report)": v for k, v in drawn.items()}}


def _setting(value) -> str:
    """A setting's value as written: lists comma-separated, null as none, exact numbers."""
    if isinstance(value, (list, tuple)):
        return ", ".join(_setting(v) for v in value) if value else "none"
    if value is None or value == {}:
        return "none"
    return value if isinstance(value, str) else json.dumps(value)


def settings_tables(settings: dict, path: str = "") -> list[Table]:
    """The settings tree as tables: one per branch (run, stages, stages.reuse, fit, ...), each
    holding its own values; a nested branch gets its own table, named by its dotted path."""
    own = [[k, _setting(v)] for k, v in settings.items() if not (isinstance(v, dict) and v)]
    tables = [Table(f"Settings: {path or 'run'}", ["setting", "value"], own)] if own else []
    for k, v in settings.items():
        if isinstance(v, dict) and v:
            tables += settings_tables(v, f"{path}.{k}" if path else k)
    return tables


def citation_section(inp: ReportInputs) -> Section:
    f = inp.findings
    settings = f.get("settings") if isinstance(f.get("settings"), dict) else {}
    sha = lookup(f, "trace.sha256") or "—"
    made = f.get("generated_at") or f.get("created_at") or "—"
    run = {k: v for k, v in settings.items() if not isinstance(v, dict)}
    branches = [k for k, v in settings.items() if isinstance(v, dict) and v]
    cite = (f"Characterization of {inp.label} (sha256 {sha}), "
            f"{fmt_number(lookup(f, 'trace.rows_kept'))} requests, computed by servetrace "
            f"{_version('servetrace')} on {made} with "
            + ", ".join(f"{k}={json.dumps(v)}" for k, v in run.items())
            + (f" and the {', '.join(branches)} settings tabled below" if branches else "") + ".")
    return Section(
        "cite", "How these findings were made", [cite],
        tables=[Table("Source", ["field", "value"],
                      [["source", str(lookup(f, "trace.source") or inp.label)], ["sha256", str(sha)],
                       ["format", str(lookup(f, "trace.format") or "—")], ["findings schema", str(f.get("schema"))],
                       ["computed at", str(made)]]),
                *settings_tables(settings),
                Table("Versions", ["package", "version"], [[k, v] for k, v in report_versions(f).items()])],
        text="Everything needed to cite or reproduce the numbers above: the exact input, the settings and the versions.")


def build_page(inp: ReportInputs) -> Page:
    f = inp.findings
    sections = finding_sections(inp) + run_sections(inp) + [citation_section(inp)]
    return Page(
        title=f"Workload characterization of {inp.label}",
        subtitle="What the request log says about its load: arrivals, clients, lengths, failures and more.",
        trace=trace_line(f), key_findings=key_findings(f), sections=sections,
        footer=f"servetrace {_version('servetrace')} · findings {f.get('schema')} · self-contained: opens offline.")
