"""Lengths: input and output CDFs with the fitted families, and their joint structure."""

from __future__ import annotations

import polars as pl

from servetrace.report import specs as vl
from servetrace.report.figures import Figure, table_with, frame, positive, thin, time_axis, time_x
from servetrace.report.values import family_name, fmt_duration, fmt_number, is_number, lookup



def length_cdfs(inp) -> Figure:
    title = "Input and output length distributions"
    # length_hist's cdf (the stage cumulates it) read at the upper edge of each bin.
    df, cols = table_with(inp, "length_hist", ("field", "bin_hi", "cdf"))
    if df is None:
        return Figure.absent("length-cdf", title, cols)
    observed = positive(df.select(pl.col("field").cast(pl.String).alias("kind"), pl.col("bin_hi").alias("tokens"), "cdf"),
                        "tokens").sort("kind", "tokens")
    observed = pl.concat([thin(g, 600) for _, g in observed.group_by("kind", maintain_order=True)])
    enc = dict(x=vl.field("tokens:Q", scale={"type": "log"}, title="tokens"),
               y=vl.field("cdf:Q", title="cumulative share of requests", axis={"format": "%"}),
               color=vl.field("kind:N", title=None, scale={"range": ["#1f4e79", "#c0504d", "#6a8d3a"]}))
    layers = [vl.chart(observed, vl.mark("line", strokeWidth=2, interpolate="step-after"), **enc)]
    fits, _ = table_with(inp, "length_fit", ("field", "family", "tokens", "cdf"))
    if fits is not None:
        curves = positive(fits.select(pl.col("field").cast(pl.String).alias("kind"), "family", "tokens", "cdf"), "tokens")
        best = {k: lookup(inp.findings, f"lengths.{k}.best_fit.family") for k in curves["kind"].unique().to_list()}
        if any(best.values()):  # the winning family per field, not every candidate
            curves = curves.filter(pl.col("family") == pl.col("kind").replace_strict(best, default=None))
        layers.append(vl.chart(thin(curves), vl.mark("line", strokeDash=[4, 3], strokeWidth=1.2),
                               **enc, detail="family:N", tooltip=["kind", "family"]))
    fams = [f"{k} {family_name(lookup(inp.findings, f'lengths.{k}.best_fit.family'))}" for k in ("input", "output")
            if lookup(inp.findings, f"lengths.{k}.best_fit.family")]
    caption = ("Share of requests with at most this many tokens (solid: observed"
               + ("; dashed: the best fitted family" if fits is not None else "") + ").")
    if fams:
        caption += " Best fits: " + "; ".join(fams) + "."
    return Figure.of("length-cdf", title, frame(vl.layer(*layers)), caption)


def length_joint(inp) -> Figure:
    title = "Output length given input length"
    grid, gcols = table_with(inp, "length_joint", ("input_lo", "input_hi", "output_lo", "output_hi", "requests"))
    quant, _ = table_with(inp, "conditional_output", ("input_lo", "output_p10", "output_p50", "output_p90"))
    if grid is None and quant is None:
        return Figure.absent("length-joint", title, gcols)
    layers = []
    x = vl.field("input:Q", scale={"type": "log"}, title="input tokens")
    y = vl.field("output:Q", scale={"type": "log"}, title="output tokens")
    if grid is not None:
        # Each cell spans its input and output bins.
        cells = positive(grid.select(pl.col("input_lo").alias("input"), pl.col("output_lo").alias("output"), "requests",
                                     "input_hi", "output_hi"), "input", "output", "requests")
        cells = cells.sort("requests", descending=True).head(4000)
        color = vl.field("requests:Q", scale={"type": "log", "scheme": "blues"}, title="requests per cell",
                         legend={"orient": "bottom", "gradientLength": 160})
        layers.append(vl.chart(cells, "rect", x=x, x2="input_hi:Q", y=y, y2="output_hi:Q", color=color))
    if quant is not None:
        qs = ["output_p10", "output_p50", "output_p90"]
        long = quant.select(pl.col("input_lo").alias("input"), *qs).unpivot(index="input", variable_name="quantile",
                                                                     value_name="output")
        long = positive(long.drop_nulls(), "input", "output")
        layers.append(vl.chart(long, vl.mark("line", point=True, strokeWidth=1.5), x=x, y=y, detail="quantile:N",
                               color=vl.value("#c0504d"), tooltip=["quantile", "input", "output"]))
    corr = lookup(inp.findings, "lengths.correlation") or {}
    caption = "Density of (input, output) pairs" if grid is not None else "Output quantiles by input bucket"
    if grid is not None and quant is not None:
        caption += ", with the output p10, p50 and p90 per input bucket (red)"
    named = [f"{k.capitalize()} {fmt_number(corr[k])}" for k in ("pearson", "spearman", "kendall") if k in corr]
    caption += "." + (" Correlation: " + ", ".join(named) + "." if named else "")
    chart = vl.layer(*layers, resolve={"scale": {"color": "independent"}}) if len(layers) > 1 else layers[0]
    return Figure.of("length-joint", title, frame(chart), caption)


def length_drift(inp) -> Figure:
    title = "Drift of the length distributions"
    df, cols = table_with(inp, "length_drift", ("field", "period_start_s", "ks_vs_all"))
    if df is None:
        return Figure.absent("length-drift", title, cols)
    kind, start, ks = cols
    shown, x = time_axis(df.select(pl.col(kind).cast(pl.String).alias("kind"), pl.col(start).alias("t"),
                                   pl.col(ks).alias("ks")).drop_nulls().sort("kind", "t"), "t")
    chart = vl.chart(shown, vl.mark("line", point=True),
                     x=time_x(x), y=vl.field("ks:Q", title="KS distance to the whole trace", scale={"domainMin": 0}),
                     color=vl.field("kind:N", title=None, scale={"range": ["#1f4e79", "#c0504d", "#6a8d3a"]}),
                     tooltip=["kind", vl.field("ks:Q", format=".3f")])
    period = lookup(inp.findings, "lengths.drift.period_s")
    per = f" of {fmt_duration(period)}" if is_number(period) else ""
    caption = (f"Each point compares the lengths in one period{per} with the whole trace's (Kolmogorov-Smirnov "
               "distance); near 0 means the distribution holds steady.")
    return Figure.of("length-drift", title, frame(chart), caption)
