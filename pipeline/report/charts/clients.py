"""Clients: the Lorenz curve of request shares and per-client rate against burstiness."""

from __future__ import annotations

import polars as pl

from servetrace.report import specs as vl
from servetrace.report.figures import Figure, table_with, frame, log_scale, rule_at, thin, top_rows
from servetrace.report.values import fmt_number, fmt_percent, lookup



def one_group(inp) -> str | None:
    """Why client charts are not drawn when the trace has a single group, else None."""
    count = lookup(inp.findings, "clients.count")
    if isinstance(count, int) and count < 2:
        why = lookup(inp.findings, "clients.group_by_reason")
        return f"one group only ({why})" if isinstance(why, str) else "one group only: nothing to compare"
    return None


def lorenz_curve(inp) -> Figure:
    title = "Lorenz curve of client load"
    if one_group(inp):
        return Figure.absent("lorenz", title, one_group(inp))
    # The clients stage's curve over every group (stages/clients.py: lorenz).
    curve, why = table_with(inp, "lorenz", ("groups", "group_share", "request_share"))
    if curve is None:
        return Figure.absent("lorenz", title, why)
    return _lorenz_figure(inp, thin(curve.select(pl.col("group_share").alias("clients"),
                                                 pl.col("request_share").alias("requests")), 500),
                          int(curve["groups"].max()))


def _lorenz_figure(inp, curve: pl.DataFrame, groups: int) -> Figure:
    title = "Lorenz curve of client load"
    pct = {"format": "%"}
    line = vl.chart(curve, vl.mark("line", color="#1f4e79"),
                    x=vl.field("clients:Q", title="share of clients (smallest first)", axis=pct),
                    y=vl.field("requests:Q", title="share of requests", axis=pct))
    equal = vl.chart(pl.DataFrame({"clients": [0.0, 1.0], "requests": [0.0, 1.0]}),
                     vl.mark("line", strokeDash=[4, 3], color="#888"), x="clients:Q", y="requests:Q")
    gini = lookup(inp.findings, "clients.gini")
    group_by = lookup(inp.findings, "clients.group_by") or "client"
    caption = f"{groups:,} groups by {group_by}; the dashed line is equal load."
    if gini is not None:
        caption += f" Gini {fmt_number(gini)}."
    return Figure.of("lorenz", title, frame(vl.layer(line, equal)), caption)


def client_rate_cv(inp) -> Figure:
    title = "Per-client rate and burstiness"
    if one_group(inp):
        return Figure.absent("client-cv", title, one_group(inp))
    df, cols = table_with(inp, "clients", ("group_key", "requests", "rate_rps", "iat_cv"))
    if df is None:
        return Figure.absent("client-cv", title, cols)
    shown = top_rows(df.select("rate_rps", "iat_cv", pl.col("requests").alias("load"),
                               pl.col("group_key").cast(pl.String).alias("client"))
                     .drop_nulls(["rate_rps", "iat_cv"]).filter(pl.col("rate_rps") > 0), "load")
    points = vl.chart(
        shown, vl.mark("circle", opacity=0.6, color="#1f4e79"),
        x=vl.field("rate_rps:Q", scale=log_scale(shown, "rate_rps"), title="mean requests / s"),
        # A few very bursty clients would flatten the rest against the Poisson line on a linear axis.
        y=vl.field("iat_cv:Q", title="CV of inter-arrival times", scale=log_scale(shown, "iat_cv", decades=1)),
        size=vl.field("load:Q", legend=None, scale={"range": [10, 300]}),
        tooltip=["client", "rate_rps", "iat_cv", "load"])
    top = lookup(inp.findings, "clients.top_share")
    caption = ("Each circle is a client, sized by its load; above the dashed line (CV = 1, Poisson) a client's "
               "arrivals are burstier than Poisson.")
    if shown.height < df.height:
        caption += f" The {shown.height:,} largest of {df.height:,} are drawn."
    if isinstance(top, dict) and top:
        caption += " Top-k shares: " + ", ".join(f"{k}: {fmt_percent(v)}" for k, v in top.items()) + "."
    return Figure.of("client-cv", title, frame(vl.layer(points, rule_at(1.0, "Poisson"))), caption)
