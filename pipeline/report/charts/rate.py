"""Rate over time: the request rate per window and the hour-of-day profile."""

from __future__ import annotations

import polars as pl

from servetrace.report import specs as vl
from servetrace.report.figures import Figure, table_with, frame, series, time_axis, time_x
from servetrace.report.values import absent_reason, fmt_duration, fmt_number, lookup



def rate_over_time(inp) -> Figure:
    title = "Request rate over time"
    df, cols = table_with(inp, "rate_series", ("bin_start_s", "rate_rps"))
    if df is None:
        return Figure.absent("rate", title, cols)
    t, rate = cols
    shown, x = time_axis(series(df.select(pl.col(t).alias("t"), pl.col(rate).alias("rate_rps"))), "t")
    trend = inp.table("rate_decomposition")
    has_trend = trend is not None and {"bin_start_s", "trend"} <= set(trend.columns)
    line = vl.chart(shown.with_columns(pl.lit("rate").alias("series")), vl.mark("line", strokeWidth=1.1),
                    x=time_x(x), y=vl.field("rate_rps:Q", title="requests / s"),
                    tooltip=[vl.field(f"{x}:Q", format=".3g"), vl.field("rate_rps:Q", format=".3g")],
                    color=vl.field("series:N", title=None, legend={} if has_trend else None))
    if has_trend:
        # The seasonal decomposition's trend (from the periodicity stage) drawn over the rate.
        td, tx = time_axis(series(trend.select(pl.col("bin_start_s").alias("t"), pl.col("trend").alias("rate_rps"))), "t")
        line = vl.layer(line, vl.chart(td.with_columns(pl.lit("trend (STL)").alias("series")),
                                       vl.mark("line", strokeWidth=2), x=time_x(tx), y="rate_rps:Q", color="series:N"))
    step = df[t].diff().median()
    caption = f"Mean rate per {fmt_duration(step)} bin" if step else "Mean rate per bin"
    if shown.height < df.height:
        caption += f", averaged to {shown.height:,} points for drawing"
    caption += "."
    peak = lookup(inp.findings, "arrivals.peak_to_mean")
    if peak is not None:
        caption += f" Peak-to-mean {fmt_number(peak)}."
    return Figure.of("rate", title, frame(line), caption)


def diurnal_profile(inp) -> Figure:
    title = "Hour-of-day profile"
    said = absent_reason(inp.findings.get("diurnal"))
    if said:  # a profile over part of a day would read as a daily cycle it is not
        return Figure.absent("diurnal", title, said)
    df, cols = table_with(inp, "hourly_profile", ("hour", "rate_rps"))
    if df is None:
        return Figure.absent("diurnal", title, cols)
    hour, rate = cols
    shown = df.select(pl.col(hour).alias("hour"), pl.col(rate).alias("rate_rps"))
    chart = vl.chart(shown, vl.mark("line", point=True),
                     x=vl.field("hour:Q", title="hour of day", scale={"domain": [0, 23]}, axis={"tickCount": 12}),
                     y=vl.field("rate_rps:Q", title="mean requests / s"))
    peak = lookup(inp.findings, "diurnal.peak_hour")
    caption = "Mean rate by hour of the day across the trace."
    if peak is not None:
        caption += f" Peak at {peak} h, peak-to-trough {fmt_number(lookup(inp.findings, 'diurnal.peak_to_trough'))}."
    return Figure.of("diurnal", title, frame(chart), caption)


WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def weekday_profile(inp) -> Figure:
    title = "Day-of-week profile"
    said = lookup(inp.findings, "diurnal.weekday_profile.absent")
    if said:
        return Figure.absent("weekday", title, str(said))
    df, cols = table_with(inp, "weekday_profile", ("weekday", "relative_rate"))
    if df is None:
        return Figure.absent("weekday", title, cols)
    day, rate = cols
    covered = df.filter(pl.col(rate).is_not_null())
    if covered.height < 2:
        return Figure.absent("weekday", title, "the trace covers less than two days of the week")
    shown = covered.select(pl.col(day).cast(pl.Int64).alias("weekday"), pl.col(rate).alias("rate")).with_columns(
        pl.col("weekday").map_elements(lambda d: WEEKDAYS[d % 7], return_dtype=pl.String).alias("day"))
    bars = vl.chart(shown, vl.mark("bar", color="#1f4e79"), x=vl.field("day:N", sort=WEEKDAYS, title=None),
                    y=vl.field("rate:Q", title="rate relative to the mean"))
    return Figure.of("weekday", title, frame(bars), "Mean rate on each day of the week (1 = the trace mean).")


def dominant_periods(inp) -> Figure:
    title = "Dominant periods of the rate"
    df, cols = table_with(inp, "periods", ("period_s", "power_share"))
    if df is None:
        return Figure.absent("periods", title, cols)
    shown = df.select(pl.col("period_s").map_elements(fmt_duration, return_dtype=pl.String).alias("period"),
                      "power_share")
    bars = vl.chart(shown, vl.mark("bar", color="#1f4e79"),
                    x=vl.field("period:N", title="period", sort="-y", axis={"labelAngle": 0}),
                    y=vl.field("power_share:Q", title="share of the rate's variance", axis={"format": "%"}),
                    tooltip=["period", vl.field("power_share:Q", format=".1%")])
    return Figure.of("periods", title, frame(bars),
                     "The strongest periods in the spectrum of the rate series; a daily cycle shows as 24 h.")
