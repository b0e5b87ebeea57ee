"""Failures: rate overall, over time, by model / service / group, and against load."""

from __future__ import annotations

import polars as pl

from servetrace.findings import Absent, Finding, absent
from servetrace.stages import sql
from servetrace.stages.context import Context, pct
from servetrace.stats import fidelity as metrics


def failure_runs(over_time: pl.DataFrame, window_s: float, runs: int) -> pl.DataFrame:
    """The failure share over time with consecutive windows pooled into at most `runs` runs (one
    window's share is noisy: a quiet window with one failure reads as a spike): each run's start,
    length, failed requests over its requests."""
    step = max(1, -(-over_time.height // runs))
    return (over_time.with_row_index("run").group_by(pl.col("run") // step, maintain_order=True)
            .agg(pl.col("window_start_s").first().cast(pl.Float64).alias("run_start_s"), pl.col("failed").sum(),
                 pl.col("requests").sum())
            .filter(pl.col("requests") > 0)
            .with_columns(pl.lit(float(step * window_s)).alias("run_s"),
                          (pl.col("failed") / pl.col("requests")).alias("failure_rate")))


def failures(con, ctx: Context) -> tuple[Finding | Absent, dict]:
    if ctx.rows == 0:
        return Absent("failures", "no requests"), {}
    failed = int(ctx.profile.get("failed_rows") or 0)
    if failed == 0 and ctx.meta.get("servetrace.failure_rule") == "none":
        fmt = ctx.meta.get("servetrace.format", "source")
        values = {"rate": None, "failed": None, "recorded": False}
        return Finding("failures", values, f"The {fmt} format records no failed requests (only served ones), "
                                           "so the failure rate is unknown.", []), {}
    over_time = sql.table(con, "failures_over_time", order_by="window_idx")
    by_group = sql.table(con, "failures_by_group", order_by="dimension, requests desc, level")
    by_load = sql.table(con, "failures_by_load", order_by="load_decile")
    busy = over_time.filter(pl.col("requests") > 0)
    rates, fails = busy["rate_rps"].to_numpy(), busy["failure_rate"].to_numpy()
    rho = metrics.spearman(rates, fails) if failed else None
    if failed == 0:
        vs_load = absent("no failed requests")
    elif rho is None:
        vs_load = absent("too few windows with varying load and failures")
    else:
        vs_load = {"spearman": rho, "windows": int(len(rates))}
    levels = {d: {r["level"]: r["failure_rate"] for r in by_group.filter(pl.col("dimension") == d).iter_rows(named=True)}
              for d in ("model", "service")}
    values = {
        "rate": failed / ctx.rows,
        "failed": failed,
        "window_rate_max": float(fails.max()) if len(fails) else None,
        "by_model": levels["model"],
        "by_service": levels["service"],
        "vs_load": vs_load,
    }
    worst = by_group.filter(pl.col("dimension") == "service").sort("failure_rate", descending=True)
    extra = (f"; highest in service {worst['level'][0]} ({pct(worst['failure_rate'][0])})"
             if failed and worst.height > 1 else "")
    load = (f"; Spearman with window load {vs_load['spearman']:.2f}" if "spearman" in vs_load else "")
    statement = f"{pct(values['rate'])} of requests failed ({failed:,}){extra}{load}."
    tables = {"failures_over_time": over_time, "failure_runs": failure_runs(over_time, ctx.settings.window_s,
                                                                              ctx.settings.stages.failure_runs),
              "failures_by_group": by_group, "failures_by_load": by_load}
    return Finding("failures", values, statement, list(tables)), tables
