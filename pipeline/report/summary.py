"""The top of the report: the trace in one line and the 5-8 findings that matter most.

A key finding is a sentence made of text and numbers; each number keeps the findings.json path
it came from, so the page (and its test) can tie every figure shown back to the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from servetrace.report.values import absent_reason, family_name, fmt, is_number, lookup, statements

MAX_KEY_FINDINGS = 8


@dataclass(frozen=True)
class Num:
    path: str
    value: Any
    text: str


Segment = str | Num


@dataclass
class KeyFinding:
    section: str
    segments: list[Segment]


def num(findings: dict, path: str, kind: str = "number", unit: str = "") -> Num | None:
    value = lookup(findings, path)
    return Num(path, value, fmt(value, kind, unit)) if is_number(value) else None


def _sentence(section: str, *parts: Segment | None) -> KeyFinding | None:
    """A finding only when every number it needs is present."""
    if any(p is None for p in parts):
        return None
    return KeyFinding(section, list(parts))


def _arrivals(f: dict) -> KeyFinding | None:
    cv = lookup(f, "arrivals.iat_cv")
    shape = "" if not is_number(cv) else " (burstier than Poisson)" if cv > 1 else " (no burstier than Poisson)"
    return _sentence("arrivals", "Requests arrive at ", num(f, "arrivals.rate_rps", unit="req/s"),
                     " on average with an inter-arrival CV of ", num(f, "arrivals.iat_cv"), f"{shape}.")


def _best_fit(f: dict) -> KeyFinding | None:
    family = lookup(f, "arrivals.best_fit.family")
    if not isinstance(family, str):
        return None
    return _sentence("arrivals", f"Inter-arrival times fit a {family_name(family)} distribution best (KS statistic ",
                     num(f, "arrivals.best_fit.ks"), ").")


def _idc(f: dict) -> KeyFinding | None:
    idc = lookup(f, "arrivals.idc")
    scales = sorted((k for k in (idc or {}) if str(k).isdigit() and is_number(idc[k])), key=int) \
        if isinstance(idc, dict) else []
    if len(scales) < 2:
        return None
    lo, hi = scales[0], scales[-1]
    return _sentence("arrivals", "The index of dispersion of counts is ", num(f, f"arrivals.idc.{lo}"),
                     f" at {lo} s and ", num(f, f"arrivals.idc.{hi}"), f" at {hi} s (Poisson: 1); the peak rate is ",
                     num(f, "arrivals.peak_to_mean"), " × the mean.")


def _clients(f: dict) -> KeyFinding | None:
    top = lookup(f, "clients.top_share")
    keys = sorted((k for k in top if is_number(top[k])), key=lambda k: int("".join(c for c in k if c.isdigit()) or 0)) \
        if isinstance(top, dict) else []
    if not keys:
        return None
    group = lookup(f, "clients.group_by") or "client"
    parts: list[Segment | None] = [f"Grouped by {group}, the top {' / '.join(str(k) for k in keys)} carry "]
    for i, k in enumerate(keys):
        parts += [" / " if i else "", num(f, f"clients.top_share.{k}", "percent")]
    parts += [" of the requests (Gini ", num(f, "clients.gini"), ", ", num(f, "clients.count"), " groups)."]
    return _sentence("clients", *[p for p in parts if p != ""])


def _lengths(f: dict) -> KeyFinding | None:
    return _sentence("lengths", "Input lengths average ", num(f, "lengths.input.mean", unit="tokens"), " (p99 ",
                     num(f, "lengths.input.p99"), "), outputs ", num(f, "lengths.output.mean", unit="tokens"),
                     " (p99 ", num(f, "lengths.output.p99"), "); their Spearman correlation is ",
                     num(f, "lengths.correlation.spearman"), ".")


def _diurnal(f: dict) -> KeyFinding | None:
    return _sentence("rate", "The rate peaks at hour ", num(f, "diurnal.peak_hour"), " with a peak-to-trough ratio of ",
                     num(f, "diurnal.peak_to_trough"), ".")


def _failures(f: dict) -> KeyFinding | None:
    return _sentence("failures", num(f, "failures.rate", "percent"), " of the requests failed.")


TEMPLATES: list[Callable[[dict], KeyFinding | None]] = [_arrivals, _best_fit, _idc, _clients, _lengths, _diurnal,
                                                        _failures]
# Areas whose own statement sentence stands in the summary (their numbers vary by trace).
STATEMENT_AREAS = ("agents", "sessions", "reasoning", "multimodal", "prefix")


def key_findings(findings: dict) -> list[KeyFinding]:
    found = [k for k in (t(findings) for t in TEMPLATES) if k is not None]
    for area in STATEMENT_AREAS:
        said = statements(findings.get(area)) if absent_reason(findings.get(area)) is None else []
        if said:
            found.append(KeyFinding(area, [said[0]]))
    return found[:MAX_KEY_FINDINGS]


def trace_line(findings: dict) -> list[tuple[str, Num | str]]:
    """(label, value) pairs describing the trace itself, for the header."""
    t = "trace."
    out: list[tuple[str, Num | str]] = []
    source = lookup(findings, "trace.source")
    if source:
        out.append(("source", str(source)))
    if lookup(findings, "trace.format"):
        out.append(("format", str(lookup(findings, "trace.format"))))
    for label, path, kind in (("rows read", "rows_read", "number"), ("kept", "rows_kept", "number"),
                              ("rejected", "rows_rejected", "number"), ("span", "span_s", "duration")):
        n = num(findings, t + path, kind)
        if n:
            out.append((label, n))
    return out
