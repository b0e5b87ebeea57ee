"""Sections for the outputs of the other commands found beside the findings: bundle, fidelity, provisioning."""

from __future__ import annotations

from typing import Any

import polars as pl

from servetrace.report import specs as vl
from servetrace.report.figures import Figure, frame, rule_at, thin, time_axis, time_x
from servetrace.report.sections import Section, Table
from servetrace.report.values import fmt_duration, fmt_number, fmt_percent, is_number, lookup

MAX_ROWS = 15
# `servetrace export` targets and where each writes (a directory for servegen and knobs, else a file).
EXPORTS = (("servegen", "export/servegen"), ("mooncake", "export/mooncake.jsonl"), ("knobs", "export/knobs"))


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return fmt_number(value) if is_number(value) or value is None else str(value)


# One colour per workload across the fidelity and provisioning charts.
TRACE_COLORS = {"source": "#1f4e79", "synthetic": "#c0504d", "ours": "#c0504d", "naive": "#888888"}


def trace_color(names: list[str]) -> dict:
    known = [n for n in TRACE_COLORS if n in names] + [n for n in names if n not in TRACE_COLORS]
    return vl.field("trace:N", title=None, scale={"domain": known, "range": [TRACE_COLORS.get(n, "#6a8d3a") for n in known]})


# What each fidelity check measures (by name, or by the prefix of a family of checks).
CHECKS = {"infinite_hit_rate": "difference of the infinite prefix-cache hit rate",
          "lru_curve_max_diff": "largest difference of the LRU hit rate over the source's capacity ladder",
          "ks_reuse_distance": "KS distance of block reuse distances", "ks_turns": "KS distance of turns per session",
          "ks_turn_gap": "KS distance of the gaps between turns (arrival to arrival)",
          "ks_think_time": "KS distance of think times (previous turn's end to arrival)",
          "ks_context": "KS distance of follow-up input (context) lengths",
          "rate_mape": "mean relative error of the rate per window", "iat_cv": "relative error of the inter-arrival CV",
          "idc_": "relative error of the IDC at {} s", "ks_": "KS distance of {} lengths",
          "spearman_": "difference of the Spearman correlation ({})", "top_share_": "difference of the top-{} client share",
          "failure_rate": "difference of the failure rate"}


def check_meaning(name: str) -> str:
    for key, text in CHECKS.items():
        if name == key or (key.endswith("_") and name.startswith(key)):
            return text.format(name[len(key):].replace("_", ", "))
    return ""


def bundle_section(inp, bundle: dict) -> Section:
    src = bundle.get("source") or {}
    clients = bundle.get("clients") if isinstance(bundle.get("clients"), list) else []
    facts = [("schema", str(bundle.get("schema", "—"))), ("created", str(bundle.get("created_at", "—"))),
             ("source", str(src.get("path", "—"))), ("source sha256", str(src.get("sha256", "—"))),
             ("rows", fmt_number(src.get("rows"))), ("grouped by", str(bundle.get("group_by", "—"))),
             ("window", f"{fmt_number(bundle.get('window_s'))} s"), ("span", fmt_duration(bundle.get("span_s"))),
             ("clients", fmt_number(len(clients)))]
    rows = [[str(c.get("id", "")), fmt_percent(c.get("share")), fmt_number(c.get("requests")),
             str(lookup(c, "iat.family", "—")), fmt_number(lookup(c, "iat.cv"))]
            for c in sorted(clients, key=lambda c: -(c.get("share") or 0))[:MAX_ROWS]]
    commands = "\n".join(f"servetrace export {inp.out_dir} --to {fmt} --out {inp.out_dir / where}"
                         for fmt, where in EXPORTS)
    generate = f"servetrace generate {inp.out_dir} --out {inp.out_dir / 'synthetic.parquet'}"
    sec = Section("bundle", "Fitted workload bundle", facts=facts,
                  text="The fitted parameters a generator consumes (bundle.json), and how to export them to other tools.",
                  statements=[f"{len(clients):,} client models fitted; the largest are listed below."] if clients else [])
    if rows:
        sec.tables.append(Table(f"Largest clients (of {len(clients):,})", ["client", "share", "requests",
                                                                          "inter-arrival family", "CV"], rows))
    sec.code.append(("Generate a synthetic trace, or export the bundle to another tool:", f"{generate}\n{commands}"))
    return sec


def _fidelity_rates(inp) -> Figure:
    title = "Rate per window: source and synthetic"
    df = inp.table("fidelity_windows")
    if df is None or not {"window_start_s", "source_rps", "synthetic_rps"} <= set(df.columns):
        return Figure.absent("fidelity-rate", title, "no fidelity_windows table")
    long = thin(df.select("window_start_s", "source_rps", "synthetic_rps")).unpivot(
        index="window_start_s", variable_name="trace", value_name="rate_rps")
    long, x = time_axis(long.with_columns(pl.col("trace").str.replace("_rps", "")), "window_start_s")
    chart = vl.chart(long, vl.mark("line", strokeWidth=1.2, opacity=0.85),
                     x=time_x(x), y=vl.field("rate_rps:Q", title="requests / s"), color=trace_color(["source", "synthetic"]))
    caption = "Mean rate per window of the source and of the synthetic trace; the synthetic line should track the source."
    mape = lookup(inp.runs.get("fidelity", {}), "rate_mape")
    if is_number(mape):
        caption += f" Mean absolute error per window: {fmt_percent(mape)}."
    return Figure.of("fidelity-rate", title, frame(chart), caption)


def _pairs(doc: dict, prefix: str = "", depth: int = 2) -> list[list[str]]:
    """Rows (metric, source, synthetic) for every {source, synthetic} pair in fidelity.json."""
    rows = []
    for key, value in doc.items():
        if not isinstance(value, dict) or key in ("checks", "settings"):
            continue
        if "source" in value and "synthetic" in value:
            if value["source"] is None and value["synthetic"] is None:
                continue  # measured in neither trace
            rows.append([prefix + key, _cell(value["source"]), _cell(value["synthetic"])])
        elif depth > 1:
            rows += _pairs(value, f"{prefix}{key}.", depth - 1)
    return rows


def fidelity_verdict(checks: dict) -> str:
    """'10 of 11 checks pass; rate_mape fails (0.178 against at most 0.0500).'"""
    ran = {k: c for k, c in checks.items() if isinstance(c, dict) and c.get("pass") is not None}
    failed = [f"{k} fails ({_cell(c.get('value'))} against at most {_cell(c.get('threshold'))})"
              for k, c in ran.items() if c["pass"] is False]
    if not ran:
        return "No fidelity check could be computed on these traces."
    said = f"{len(ran) - len(failed)} of {len(ran)} fidelity checks pass"
    return said + ("; " + "; ".join(failed) if failed else "") + "."


def fidelity_section(inp, fidelity: dict) -> Section:
    checks = fidelity.get("checks") if isinstance(fidelity.get("checks"), dict) else {}
    verdict = {True: "pass", False: "FAIL", None: "not checked"}
    rows = [[name, check_meaning(name), _cell(c.get("value")), _cell(c.get("threshold")),
             verdict.get(c.get("pass"), "—") + (f" ({c['reason']})" if c.get("pass") is None and c.get("reason") else "")]
            for name, c in checks.items() if isinstance(c, dict)]
    said = [fidelity_verdict(checks)]
    sec = Section("fidelity", "Fidelity of a synthetic trace", said, figures=[_fidelity_rates(inp)],
                  text="How closely a generated trace reproduces this one (fidelity.json).")
    if rows:
        sec.tables.append(Table("Checks: each passes when its value does not exceed the threshold",
                                ["check", "what it measures", "value", "threshold", "result"], rows))
    pairs = _pairs(fidelity)
    if pairs:
        sec.tables.append(Table("Source and synthetic side by side", ["metric", "source", "synthetic"], pairs))
    return sec


def provision_curve(inp, provision: dict) -> pl.DataFrame | None:
    """(servers, trace, latency_s): the provision_curve table, else the curve provision.json records."""
    df = inp.table("provision_curve")
    if df is not None and {"servers", "trace", "latency_s"} <= set(df.columns):
        return df
    curve = provision.get("curve")
    if not isinstance(curve, dict) or not isinstance(curve.get("servers"), list):
        return None
    servers = curve["servers"]
    parts = [pl.DataFrame({"servers": servers, "trace": name, "latency_s": [v if is_number(v) else None for v in ys]},
                          schema={"servers": pl.Int64, "trace": pl.String, "latency_s": pl.Float64})
             for name, ys in curve.items() if name != "servers" and isinstance(ys, list) and len(ys) == len(servers)]
    return pl.concat(parts) if parts else None


def latency_title(provision: dict) -> str:
    """'p99 TTFT (s)' from the serving model's metric and quantile."""
    quantile, metric = lookup(provision, "model.quantile"), lookup(provision, "model.metric")
    q = f"p{quantile * 100:g} " if is_number(quantile) else ""
    return f"{q}{str(metric).upper() if metric == 'ttft' else metric or 'latency'} (s)"


def _provision_curve(inp, provision: dict) -> Figure:
    title = "Latency against servers"
    df = provision_curve(inp, provision)
    if df is None:
        return Figure.absent("provision-curve", title, "no provision_curve table and no curve in provision.json")
    shown = df.filter(pl.col("latency_s") > 0)
    lines = vl.chart(shown, vl.mark("line", point=True),
                     x=vl.field("servers:Q", title="servers", axis={"tickMinStep": 1, "format": "d"}),
                     y=vl.field("latency_s:Q", scale={"type": "log"}, title=latency_title(provision)),
                     color=trace_color(shown["trace"].unique(maintain_order=True).to_list()),
                     tooltip=["trace", "servers", vl.field("latency_s:Q", format=".3g")])
    chart = lines
    target = lookup(provision, "model.target_s")
    if is_number(target):
        chart = vl.layer(lines, rule_at(float(target), f"target {target:g} s", at="end"))
    caption = "Latency under each workload as servers are added; each needs the fewest servers whose line is under the target."
    capacity = provision.get("capacity")
    if isinstance(capacity, dict) and capacity:
        caption += " Servers needed: " + ", ".join(f"{k} {_cell(v)}" for k, v in capacity.items()) + "."
    return Figure.of("provision-curve", title, frame(chart), caption)


def provision_section(inp, provision: dict) -> Section:
    capacity = provision.get("capacity") if isinstance(provision.get("capacity"), dict) else {}
    rows = [[name, _cell(servers), fmt_percent(lookup(provision, f"error.{name}")) if name != "source" else "—",
             _cell(lookup(provision, f"traces.{name}.mean_rps")), _cell(lookup(provision, f"traces.{name}.load_servers"))]
            for name, servers in capacity.items()]
    said = []
    if is_number(capacity.get("source")):
        said.append(f"For {provision.get('latency', 'the latency target')}, the source trace needs "
                    f"{_cell(capacity['source'])} servers; "
                    + "; ".join(f"{name} {_cell(n)} ({fmt_percent(lookup(provision, f'error.{name}'))})"
                                for name, n in capacity.items() if name != "source") + ".")
    sec = Section("provision", "Provisioning", said, figures=[_provision_curve(inp, provision)],
                  text="Servers needed to meet a latency target under the real trace, under our synthetic one and "
                       "under a naive one (Poisson arrivals, independent lengths); negative error is under-provisioning.")
    if isinstance(provision.get("model_statement"), str):
        sec.details.append(("The serving model simulated", provision["model_statement"]))
    if rows:
        sec.tables.append(Table(f"Servers needed for {provision.get('latency', 'the target')}",
                                ["workload", "servers needed", "error vs source", "mean req/s", "busy servers (load)"],
                                rows))
    return sec


def run_sections(inp) -> list[Section]:
    builders = {"bundle": bundle_section, "fidelity": fidelity_section, "provision": provision_section}
    return [builders[kind](inp, doc) for kind, doc in inp.runs.items()]
