"""Reasoning: the two-component mixture on log reasoning length, and the share of output spent reasoning."""

from __future__ import annotations

import polars as pl

from servetrace.report import specs as vl
from servetrace.report.figures import Figure, table_with, frame
from servetrace.report.values import fmt_number, fmt_percent, is_number, lookup

OBSERVED = "#9db4cc"
COMPONENTS = ["#c0504d", "#e08a2c"]
MIXTURE = "#1f4e79"


def component_labels(findings: dict, n: int) -> list[str]:
    """'component 1: 87.6 %, median 464 tokens' per fitted component, from reasoning.modes."""
    modes = lookup(findings, "reasoning.modes")
    labels = []
    for i in range(n):
        mode = modes[i] if isinstance(modes, list) and i < len(modes) and isinstance(modes[i], dict) else {}
        weight, median = mode.get("weight"), mode.get("median_tokens")
        said = ", ".join(s for s in (f"weight {fmt_percent(weight)}" if is_number(weight) else "",
                                     f"median {fmt_number(median)} tokens" if is_number(median) else "") if s)
        labels.append(f"component {i + 1}" + (f": {said}" if said else ""))
    return labels


def reasoning_mixture(inp) -> Figure:
    title = "Reasoning length, with the two-component mixture"
    df, cols = table_with(inp, "reasoning_mixture", ("reason_lo", "reason_hi", "share"))
    if df is None:
        return Figure.absent("mixture", title, cols)
    parts = sorted(c for c in df.columns if c.startswith("component_") and c.endswith("_share"))
    bins = df.filter(pl.col("reason_lo") > 0)
    x = vl.field("reason_lo:Q", scale={"type": "log"}, title="reasoning tokens (log bins)")
    y = vl.field("share:Q", title="share of requests per bin", axis={"format": "%"})
    bars = vl.chart(bins.select("reason_lo", "reason_hi", "share"), vl.mark("rect", color=OBSERVED),
                    x=x, x2="reason_hi:Q", y=y, y2=vl.datum(0),
                    tooltip=[vl.field("reason_lo:Q", format=",.0f", title="from"),
                             vl.field("reason_hi:Q", format=",.0f", title="to"), vl.field("share:Q", format=".2%")])
    if not parts:
        return Figure.of("mixture", title, frame(bars), "Histogram of reasoning length; no mixture was fitted.")
    labels = component_labels(inp.findings, len(parts))
    # Each component's expected share per bin, drawn at the bin's geometric middle (the bins are log-spaced).
    mid = (pl.col("reason_lo") * pl.col("reason_hi")).sqrt().alias("reason_lo")
    curves = bins.select(mid, *[pl.col(c).alias(label) for c, label in zip(parts, labels)],
                         pl.sum_horizontal(parts).alias("mixture"))
    long = curves.unpivot(index="reason_lo", variable_name="curve", value_name="share")
    domain = [*labels, "mixture"]
    lines = vl.chart(
        long, vl.mark("line", strokeWidth=1.8), x=x, y=y,
        color=vl.field("curve:N", title=None, scale={"domain": domain, "range": [*COMPONENTS, MIXTURE]},
                       legend={"orient": "bottom", "direction": "vertical", "labelLimit": 0}),
        strokeDash=vl.field("curve:N", scale={"domain": domain, "range": [[5, 3], [5, 3], [1, 0]]}, legend=None))
    shape = lookup(inp.findings, "reasoning.bimodal")
    ashman = lookup(inp.findings, "reasoning.ashman_d")
    caption = ("Bars: observed share of requests per log-spaced bin of reasoning tokens. Lines: the two fitted "
               "log-normal components (weighted) and their sum.")
    if isinstance(shape, bool):
        caption += " Two separate modes: bimodal" if shape else " The components overlap: not clearly bimodal"
        caption += (f" (Ashman's D {fmt_number(ashman)}; above 2 separates two modes)." if is_number(ashman) else ".")
    return Figure.of("mixture", title, frame(vl.layer(bars, lines)), caption)


def reason_ratio(inp) -> Figure:
    title = "Share of output spent reasoning"
    df, cols = table_with(inp, "reason_ratio", ("ratio_lo", "ratio_hi", "share"))
    if df is None:
        return Figure.absent("reason-ratio", title, cols)
    bars = vl.chart(
        df.select("ratio_lo", "ratio_hi", "share"), vl.mark("rect", color=MIXTURE, stroke="#fff", strokeWidth=0.5),
        x=vl.field("ratio_lo:Q", scale={"domain": [0, 1]}, axis={"format": "%"},
                   title="reasoning tokens / output tokens"),
        x2="ratio_hi:Q", y=vl.field("share:Q", title="share of requests", axis={"format": "%"}), y2=vl.datum(0),
        tooltip=[vl.field("ratio_lo:Q", format=".0%", title="from"), vl.field("ratio_hi:Q", format=".0%", title="to"),
                 vl.field("share:Q", format=".2%")])
    caption = "Requests by the share of their output spent reasoning."
    mean = lookup(inp.findings, "reasoning.reason_ratio_mean")
    peaks = lookup(inp.findings, "reasoning.reason_ratio_peaks")
    if is_number(mean):
        caption += f" Mean {fmt_percent(mean)}."
    if isinstance(peaks, list) and peaks and all(is_number(p) for p in peaks):
        caption += " Tallest bins at " + " and ".join(fmt_percent(p) for p in peaks) + "."
    caption += " (ServeGen found DeepSeek-R1 peaking near 30-40 % and 90-100 %.)"
    return Figure.of("reason-ratio", title, frame(bars), caption)
