"""Distributions the stages tabulate as (value, count): failures, session turns, images, prefix reuse."""

from __future__ import annotations

import polars as pl

from servetrace.report import specs as vl
from servetrace.report.figures import (HEIGHT, WIDTH, Figure, table_with, frame, group_label, rule_at, series, time_axis,
                                     time_x, top_rows)
from servetrace.report.values import fmt_duration, fmt_number, fmt_percent, is_number, lookup



# Count columns whose name does not read well on an axis.
COUNT_TITLES = {"share_on_grid": "share of arrivals on the grid"}


def _bars(inp, key: str, title: str, table: str, columns: tuple[str, ...], x_title: str,
          caption: str, log_x: bool = False, share_axis: bool = False) -> Figure:
    """`columns`: (value, count) or, for binned values, (value's lower edge, count, upper edge)."""
    df, cols = table_with(inp, table, columns)
    if df is None:
        return Figure.absent(key, title, cols)
    v, n, upper = (*cols, None)[:3]
    shown = df.select(pl.col(v).cast(pl.Float64).alias("value"), pl.col(n).alias("count"),
                      *([pl.col(upper).cast(pl.Float64).alias("value_hi")] if upper else [])).drop_nulls()
    if log_x:
        shown = shown.filter(pl.col("value") > 0)
    shown = top_rows(shown, "count", 400).sort("value")
    x = vl.field("value:Q", title=x_title, scale={"type": "log"} if log_x else {"domainMin": 0})
    y = vl.field("count:Q", title=COUNT_TITLES.get(n, n), axis={"format": "%"} if n.startswith("share") else {},
                 scale={"domain": [0, 1]} if share_axis else {})
    if upper:  # binned values: each bar spans its bin
        bars = vl.chart(shown, vl.mark("rect", color="#1f4e79", stroke="#fff", strokeWidth=0.5),
                        x=x, x2="value_hi:Q", y=y, y2=vl.datum(0), tooltip=["value", "value_hi", "count"])
    else:
        bars = vl.chart(shown, vl.mark("bar", color="#1f4e79"), x=x, y=y, tooltip=["value", "count"])
    return Figure.of(key, title, frame(bars), caption)


def _over_time(inp, key: str, title: str, table: str, value: str, y_title: str,
               caption: str, color: str = "#c0504d") -> Figure:
    df, cols = table_with(inp, table, ("window_start_s", value))
    if df is None:
        return Figure.absent(key, title, cols)
    t, v = cols
    shown, x = time_axis(series(df.select(pl.col(t).cast(pl.Float64).alias("t"), pl.col(v).cast(pl.Float64).alias("value")).drop_nulls()), "t")
    line = vl.chart(shown, vl.mark("line", color=color, strokeWidth=1.2),
                    x=time_x(x), y=vl.field("value:Q", title=y_title, axis={"format": "%"}))
    return Figure.of(key, title, frame(line), caption)


def failures_over_time(inp) -> Figure:
    title = "Failure rate over time"
    overall = lookup(inp.findings, "failures.rate")
    said = f"; {fmt_percent(overall)} overall (dashed)." if is_number(overall) else "."
    # The failures stage pools consecutive windows into runs (stages/failures.py: failure_runs).
    df, cols = table_with(inp, "failure_runs", ("run_start_s", "run_s", "failed", "requests", "failure_rate"))
    if df is None:
        return Figure.absent("failures-time", title, cols)
    shown, x = time_axis(df.select(pl.col("run_start_s").alias("t"), pl.col("failure_rate").alias("value"), "requests"), "t")
    chart = vl.chart(shown, vl.mark("line", color="#c0504d", strokeWidth=1.2),
                     x=time_x(x), y=vl.field("value:Q", title="failed share of requests", axis={"format": "%"}),
                     tooltip=[vl.field("value:Q", format=".2%", title="failed"), vl.field("requests:Q", format=",")])
    if is_number(overall):
        chart = vl.layer(chart, rule_at(float(overall), "overall", at="end"))
    return Figure.of("failures-time", title, frame(chart),
                     f"Share of failed requests per {fmt_duration(df['run_s'][0])}" + said)


def failures_by_group(inp) -> Figure:
    title = "Failure rate by model and service"
    df, cols = table_with(inp, "failures_by_group", ("dimension", "level", "failure_rate"))
    if df is None:
        return Figure.absent("failures-group", title, cols)
    rate = "failure_rate"
    label = group_label(lookup(inp.findings, "clients.group_by"))
    shown = top_rows(df.select(label.alias("group"), pl.col(rate).alias("failure_rate")), "failure_rate", 25)
    bars = vl.chart(shown, vl.mark("bar", color="#c0504d"),
                    y=vl.field("group:N", sort="-x", title=None, axis={"labelLimit": 220}),
                    x=vl.field("failure_rate:Q", title="failed share", axis={"format": "%", "tickCount": 5}))
    return Figure.of("failures-group", title, {**bars, "width": WIDTH - 160, "height": HEIGHT}, "Share of failed requests in each model, service and large group.")


def session_turns(inp) -> Figure:
    caption = "Number of sessions with each number of turns."
    multi = lookup(inp.findings, "sessions.multi_turn_share")
    if is_number(multi):
        caption += f" {fmt_percent(multi)} of sessions have more than one turn."
    return _bars(inp, "turns", "Turns per session", "sessions", ("turns", "sessions"), "turns in the session",
                 caption)


def session_gaps(inp) -> Figure:
    caption = "Time from one turn of a session to the next, in log-spaced bins."
    p50, p90 = lookup(inp.findings, "sessions.gap_p50_s"), lookup(inp.findings, "sessions.gap_p90_s")
    if is_number(p50) and is_number(p90):
        caption += f" Median {fmt_duration(p50)}, p90 {fmt_duration(p90)}."
    return _bars(inp, "session-gaps", "Gaps between turns", "session_gaps", ("gap_lo_s", "gaps", "gap_hi_s"), "gap between turns (s)",
                 caption, log_x=True)


def images_per_request(inp) -> Figure:
    return _bars(inp, "images", "Images per request", "multimodal_images", ("image_count", "requests"),
                 "images in the request", "Requests by the number of images they carry.")


def tokens_per_image(inp) -> Figure:
    return _bars(inp, "image-tokens", "Tokens per image", "multimodal_tokens_per_image", ("tokens_per_image", "requests"),
                 "tokens per image", "The most common image token counts: they cluster at a few resolutions.")


def prefix_over_time(inp) -> Figure:
    return _over_time(inp, "prefix-time", "Prefix cache hit rate over time", "prefix_reuse", "prefix_hit_rate",
                      "blocks an ideal prefix cache hits", "Share of KV-cache blocks in the leading run of blocks "
                      "seen before, per window.", color="#1f4e79")


def prefix_lru_curve(inp) -> Figure:
    title = "Prefix-cache hit rate against capacity"
    df, cols = table_with(inp, "prefix_lru_curve", ("capacity_tokens", "hit_rate", "block_size"))
    if df is None:
        return Figure.absent("prefix-lru", title, cols)
    shown = df.filter(pl.col("capacity_tokens").is_not_null()).select(
        pl.col("capacity_tokens").cast(pl.Float64), pl.col("hit_rate").cast(pl.Float64),
        pl.format("{} tokens", pl.col("block_size")).alias("block size"))
    line = vl.chart(shown, vl.mark("line", point=True),
                    x=vl.field("capacity_tokens:Q", title="LRU cache capacity (tokens)", scale={"type": "log"}),
                    y=vl.field("hit_rate:Q", title="blocks hit", axis={"format": "%"}, scale={"domain": [0, 1]}),
                    color=vl.field("block size:N"), tooltip=["block size", "capacity_tokens", "hit_rate"])
    inf = lookup(inp.findings, "prefix.infinite_hit_rate")
    method = lookup(inp.findings, "prefix.lru_method")
    caption = "Share of KV-cache blocks an LRU prefix cache of each capacity hits, per block size"
    caption += f" ({method} stack distances)." if method else "."
    if is_number(inf):
        caption += f" An infinite cache hits {fmt_percent(inf)}."
    return Figure.of("prefix-lru", title, frame(line), caption)


def reuse_distances(inp) -> Figure:
    return _bars(inp, "reuse-distance", "Reuse distances", "prefix_reuse_distance", ("distance_lo", "share", "distance_hi"),
                 "distinct blocks since the previous use (log2 bins)", "How many other blocks were used between two "
                 "uses of a block: an LRU cache of C blocks hits the reuses left of C.", log_x=True)


def timestamp_grid(inp) -> Figure:
    return _bars(inp, "timestamp-grid", "Timestamp rounding", "timestamp_grid", ("grid_s", "share_on_grid"), "candidate grid (s)",
                 "Share of arrivals on a multiple of each grid step; near 100 % means timestamps were rounded to "
                 "it (unrounded times give about 4 %).", log_x=True, share_axis=True)


def failures_by_load(inp) -> Figure:
    title = "Failure rate against load"
    df, cols = table_with(inp, "failures_by_load", ("rate_rps", "failure_rate"))
    if df is None:
        return Figure.absent("failures-load", title, cols)
    shown = df.select(pl.col("rate_rps").cast(pl.Float64), pl.col("failure_rate").cast(pl.Float64)).drop_nulls()
    line = vl.chart(shown, vl.mark("line", point={"color": "#c0504d"}, color="#c0504d"),
                    x=vl.field("rate_rps:Q", title="window rate (requests / s), by load decile", scale={"zero": False}),
                    y=vl.field("failure_rate:Q", title="failed share", axis={"format": "%"}))
    rho = lookup(inp.findings, "failures.vs_load.spearman")
    caption = "Windows grouped into load deciles, quietest first."
    if rho is not None:
        caption += f" Spearman correlation of failures with load: {fmt_number(rho)}."
    return Figure.of("failures-load", title, frame(line), caption)
