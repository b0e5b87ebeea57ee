"""Lay findings out as report sections: statements, a fact table and the figures of each area."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from servetrace.report.charts import agents, arrivals, clients, counts, lengths, rate, reasoning
from servetrace.report.figures import Figure
from servetrace.report.values import absent_reason, flat_facts, fmt_number, fmt_percent, lookup, statements


@dataclass
class Table:
    caption: str
    header: list[str]
    rows: list[list[str]]


@dataclass
class Section:
    key: str
    title: str
    statements: list[str] = field(default_factory=list)
    facts: list[tuple[str, str]] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    absent: str | None = None
    text: str = ""  # a fixed introduction: what the section shows
    code: list[tuple[str, str]] = field(default_factory=list)  # (caption, commands) shown as a code block
    details: list[tuple[str, str]] = field(default_factory=list)  # (summary, long text) folded away


# (key, title, areas of findings.json, figure builders, introduction)
AREAS: list[tuple[str, str, tuple[str, ...], list[Callable], str]] = [
    ("arrivals", "Arrivals and burstiness", ("arrivals",),
     [arrivals.iat_distribution, arrivals.idc_by_scale, arrivals.window_cv, arrivals.window_families,
      arrivals.cv_by_group],
     "How requests arrive: the inter-arrival distribution and its best-fitting family, and how bursty the "
     "arrivals are at time scales from a second to a window."),
    ("rate", "Rate over time", ("diurnal", "periodicity"),
     [rate.rate_over_time, rate.diurnal_profile, rate.weekday_profile, rate.dominant_periods],
     "The request rate across the trace and its daily cycle."),
    ("clients", "Clients", ("clients",), [clients.lorenz_curve, clients.client_rate_cv],
     "How the load is split across clients (or the best available grouping) and how each behaves."),
    ("lengths", "Lengths and their correlation", ("lengths",), [lengths.length_cdfs, lengths.length_joint,
                                                                    lengths.length_drift],
     "Input and output token counts, the fitted families, how output length depends on input length, and "
     "whether the distributions drift over time."),
    ("failures", "Failures", ("failures",), [counts.failures_over_time, counts.failures_by_group, counts.failures_by_load],
     "Requests that failed, over time and by model and service."),
    ("sessions", "Sessions", ("sessions",), [counts.session_turns, counts.session_gaps],
     "Conversations (from session ids, or inferred from prefix chains): turns per session and the gaps between turns."),
    ("reasoning", "Reasoning", ("reasoning",), [reasoning.reasoning_mixture, reasoning.reason_ratio],
     "Reasoning tokens: how long the reasoning is (one mode or two) and how much of each output it takes."),
    ("multimodal", "Multimodal requests", ("multimodal",), [counts.images_per_request, counts.tokens_per_image],
     "Images attached to requests and the tokens they cost."),
    ("prefix", "Prefix reuse", ("prefix",), [counts.prefix_lru_curve, counts.reuse_distances, counts.prefix_over_time],
     "How often requests share a prompt prefix (KV-cache blocks), and how large a cache keeps the reuse."),
]
# Shown only for traces that have the area (agent traces): other reports stay as they were.
OPTIONAL_AREAS = [
    ("agents", "Agent workload", ("agents",),
     [agents.calls_per_unit, agents.gaps_between_calls, agents.context_per_step, agents.outputs_by_kind],
     "Agents calling the model in loops: calls per user turn and per session, the idle time between calls "
     "(tool time within a turn, think time between turns), subagents, the context each call resends and "
     "how much of it the prefix cache served, output lengths per call kind, and how sessions arrive "
     "compared with calls."),
]
# Keys of findings.json that are not areas of findings.
META = {"schema", "trace", "settings", "versions", "generated_at", "created_at", "source", "quality", "sha256"}


def _facts(area: Any) -> list[tuple[str, str]]:
    return [(k, v if isinstance(v, str) else fmt_number(v)) for k, v in flat_facts(area)]


def quality_section(inp) -> Section:
    findings = inp.findings
    trace, quality = findings.get("trace") or {}, findings.get("quality") or {}
    sec = Section("quality", "Data quality", statements(trace) + statements(quality),
                  _facts(trace) + _facts(quality), [counts.timestamp_grid(inp)],
                  text="What was read, what was kept and why rows were rejected, before any statistic.")
    reasons = lookup(trace, "reject_reasons") or lookup(quality, "reject_reasons")
    if isinstance(reasons, dict) and reasons:
        sec.tables.append(Table("Rejected rows by reason", ["reason", "rows"],
                                [[str(k), fmt_number(v)] for k, v in reasons.items()]))
    return sec


def area_section(inp, key: str, title: str, area_keys: tuple[str, ...], builders: list[Callable],
                 text: str) -> Section:
    areas = [inp.findings.get(k) for k in area_keys]
    present = [(k, a) for k, a in zip(area_keys, areas) if absent_reason(a) is None]
    if not present:
        return Section(key, title, absent=absent_reason(areas[0]), text=text)
    prefix = len(present) > 1
    facts = [(f"{k}.{name}" if prefix else name, v) for k, a in present for name, v in _facts(a)]
    return Section(key, title, [s for _, a in present for s in statements(a)], facts,
                   [build(inp) for build in builders], text=text)


def arrival_model_tables(findings: dict) -> list[Table]:
    """The arrival model's candidates side by side: IDC-curve error per scale (seed-to-seed floor
    beside it), inter-arrival KS and CV against the source's, and which won."""
    model = lookup(findings, "arrivals.arrival_model")
    if not isinstance(model, dict) or not isinstance(model.get("candidates"), dict):
        return []
    scales = [str(int(s)) for s in model.get("scored_scales_s") or []]
    header = (["model"] + [f"IDC error {s} s (seed floor)" for s in scales]
              + ["IDC-curve error", "inter-arrival KS", "inter-arrival CV", "score"])
    rows = []
    for name, ev in sorted(model["candidates"].items(), key=lambda kv: kv[1].get("score") or 0.0):
        per = [f"{fmt_percent(lookup(ev, f'idc_error.{s}'))} ({fmt_percent(lookup(ev, f'idc_seed_floor.{s}'))})"
               for s in scales]
        label = name + (" (chosen)" if name == model.get("chosen") else "")
        rows.append([label] + per + [fmt_percent(ev.get("idc_error_mean")), "absent" if isinstance(ev.get("iat_ks"), dict) else fmt_number(ev.get("iat_ks")),
                                     fmt_number(ev.get("iat_cv")), fmt_number(ev.get("score"))])
    source_cv = lookup(model, "source.iat_cv")
    rows.append(["source"] + ["–"] * len(scales) + ["–", "–", fmt_number(source_cv), "–"])
    return [Table("Arrival model candidates, generated over the source's span (lowest score wins)", header, rows)]


def finding_sections(inp) -> list[Section]:
    """One section per area, in reading order; areas the layout does not know get a plain section."""
    sections = [quality_section(inp)]
    sections += [area_section(inp, *spec) for spec in AREAS]
    next(s for s in sections if s.key == "arrivals").tables.extend(arrival_model_tables(inp.findings))
    sections += [area_section(inp, *spec) for spec in OPTIONAL_AREAS if spec[0] in inp.findings]
    known = {k for spec in AREAS + OPTIONAL_AREAS for k in spec[2]} | META
    for extra, area in inp.findings.items():
        if extra not in known and isinstance(area, dict):
            sections.append(area_section(inp, extra, extra.replace("_", " ").capitalize(), extra, [], ""))
    return sections
