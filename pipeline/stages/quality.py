"""Data quality: timestamp resolution (grid, ties), duplicates, failed rows, ramp-up head, gaps."""

from __future__ import annotations

import json

import numpy as np
import polars as pl

from servetrace.findings import Finding
from servetrace.ingest.outliers import REASON as OUTLYING
from servetrace.stages import sql
from servetrace.settings import DEFAULTS
from servetrace.stages.context import Context, fmt, pct
from servetrace.stages.gaps import GapResults



def trace_profile(con) -> dict:
    return sql.table(con, "trace_profile").row(0, named=True)


def timestamp_resolution(grid: pl.DataFrame, grid_share: float = DEFAULTS.stages.grid_share) -> tuple[float | None, float]:
    """The coarsest candidate grid at least `grid_share` of the arrivals sit on, and that share (None: finer than 1 ms)."""
    on = grid.filter(pl.col("share_on_grid") >= grid_share).sort("grid_s")
    if on.height == 0:
        return None, float(grid["share_on_grid"].max() or 0.0)
    last = on.row(-1, named=True)
    return float(last["grid_s"]), float(last["share_on_grid"])


def ramp_up(window_rates: pl.DataFrame, fraction: float = DEFAULTS.stages.ramp_fraction) -> tuple[int, float]:
    """Windows at the head of the trace whose rate stays below `fraction` of the median."""
    rates = window_rates.sort("window_idx")["rate_rps"].to_numpy()
    busy = rates[rates > 0]
    if len(rates) < 4 or len(busy) == 0:
        return 0, 0.0
    low = rates < fraction * np.median(busy)
    head = int(np.argmin(low)) if not low.all() else 0
    return head, float(window_rates.sort("window_idx")["requests"].head(head).sum())


def quality(con, ctx: Context, grid: pl.DataFrame, window_rates: pl.DataFrame, gaps: GapResults) -> tuple[Finding, dict]:
    summary = dict(gaps.summary)
    # file order is arrival order: distinct arrival times are the first one and every positive gap after it
    summary["distinct_arrivals"] = gaps.summary["positive_gaps"] + 1 if ctx.rows else 0
    _, share = timestamp_resolution(grid, ctx.settings.stages.grid_share)
    resolution = ctx.resolution_s  # characterize decided it from the same grid (None: no spread to measure)
    head, head_requests = ramp_up(window_rates, ctx.settings.stages.ramp_fraction)
    rows = ctx.rows
    failed = int(ctx.profile.get("failed_rows") or 0)
    null_columns = sorted(c for c in ("client_id", "session_id", "model", "service", "input_tokens", "output_tokens",
                                      "reason_tokens", "image_count", "image_tokens", "latency_s") if not ctx.has(c))
    values = {
        "resolution_s": resolution,
        "grid_share": share,
        "derounded": ctx.jitter_s > 0,
        "jitter_s": ctx.jitter_s,
        "tie_share": summary["tie_share"],
        "distinct_arrivals": summary["distinct_arrivals"],
        "duplicate_rows": summary["duplicate_rows"],
        "duplicate_rows_method": "rows equal in every column, found by equal 64-bit hashes of whole rows "
                                 "(a false match has odds about n^2 / 2^65)",
        "failed_rows": failed,
        "failed_share": failed / rows if rows else None,
        "ramp_up_windows": head,
        "ramp_up_s": head * ctx.settings.window_s,
        "ramp_up_requests": head_requests,
        "max_gap_s": summary["max_gap_s"],
        "empty_windows": int((window_rates["requests"] == 0).sum()),
        "windows": window_rates.height,
        "null_columns": null_columns,
        "outlying_arrivals": outlying_arrivals(ctx.meta),
    }
    grid_text = (f"timestamps sit on a {fmt(resolution)} s grid ({pct(summary['tie_share'])} of gaps are ties), so "
                 "burstiness fits use de-rounded arrivals (seeded uniform jitter within the grid)"
                 if ctx.jitter_s > 0 else
                 f"timestamps resolve to {fmt(resolution)} s" if resolution else "timestamps are finer than 1 ms")
    ramp = f"; a {fmt(head * ctx.settings.window_s / 3600)} h ramp-up head" if head else ""
    if values["outlying_arrivals"]:
        n = values['outlying_arrivals']
        ramp += (f"; {n:,} row{'s' if n > 1 else ''} with an outlying timestamp (far outside the rest of "
                 "the trace) were set aside as rejects")
    statement = (f"{grid_text[0].upper()}{grid_text[1:]}; {failed:,} failed rows ({pct(values['failed_share'])}), "
                 f"{summary['duplicate_rows']:,} duplicate rows{ramp}.")
    return Finding("quality", values, statement, ["timestamp_grid", "quality_gaps", "window_rates"]), {
        "timestamp_grid": grid, "quality_gaps": gaps.longest}


def outlying_arrivals(meta: dict) -> int:
    """Rows ingest set aside for an arrival far outside the rest of the trace (0: none, or unknown)."""
    try:
        return int(json.loads(meta.get("servetrace.summary") or "{}").get("reject_reasons", {}).get(OUTLYING, 0))
    except (ValueError, AttributeError):
        return 0

