"""The gap statistics as set-based SQL (sql/gaps/): the same GapResults as the numpy stream in
`gaps.py`, computed by window functions partitioned by analysis window, so an engine that spreads
rows over machines (Spark) never needs them in one place. Runs on either engine's connection
through `stages.sql`; DuckDB keeps the faster single-pass stream, and the tests hold the two equal.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from servetrace.stages import sql
from servetrace.rows.moments import cv
from servetrace.stages.gaps import GapResults, _nulls

LEVEL_COLUMNS = ["level", "requests", "gaps", "iat_mean_s", "iat_cv"]


def compute(con, rows: int, t0_s: float, t1_s: float, window_s: float) -> GapResults:
    """Every gap statistic of stg_requests (variables jitter_s, sample_p and per_window_n set)."""
    n_windows = int(np.floor((t1_s - t0_s) / window_s)) + 1 if rows else 0
    sql.run_sql(con, "gap_rows")
    s = sql.table(con, "gap_summary").row(0, named=True)
    gaps = int(s["gaps"] or 0)
    summary = {"gaps": gaps, "positive_gaps": int(s["positive_gaps"] or 0), "zero_gaps": int(s["zero_gaps"] or 0),
               "duplicate_rows": int(s["duplicate_rows"] or 0)}
    if gaps:
        mean, std = float(s["iat_mean_s"]), float(s["iat_std_s"])
        mean_d, std_d = s["iat_mean_d_s"], s["iat_std_d_s"]
        summary.update({"iat_mean_s": mean, "iat_std_s": std, "iat_cv": std / mean if mean else None,
                        "iat_cv_derounded": float(std_d) / float(mean_d) if mean_d else None,
                        "max_gap_s": float(s["max_gap_s"]), "tie_share": summary["zero_gaps"] / gaps})
    else:
        summary.update({k: None for k in ("iat_mean_s", "iat_std_s", "iat_cv", "iat_cv_derounded",
                                          "max_gap_s", "tie_share")})
    longest = sql.table(con, "longest_gaps", order_by="gap_s desc, gap_start_s").cast(
        {c: pl.Float64 for c in ("gap_start_s", "gap_s", "gap_windows")})
    moments = sql.table(con, "window_gap_moments")
    windows = pl.DataFrame({"window_idx": np.arange(n_windows, dtype=np.int64)}).join(
        moments.cast({"window_idx": pl.Int64}), on="window_idx", how="left")
    window_gaps = _nulls(pl.DataFrame({
        "window_idx": windows["window_idx"],
        "gaps": windows["gaps"].fill_null(0).cast(pl.Int64),
        "iat_mean_s": windows["iat_mean_s"].cast(pl.Float64),
        "iat_cv": cv(windows["iat_mean_s"].cast(pl.Float64).fill_null(np.nan).to_numpy(),
                     windows["iat_std_s"].cast(pl.Float64).fill_null(np.nan).to_numpy()),
        "iat_cv_derounded": cv(windows["iat_mean_d_s"].cast(pl.Float64).fill_null(np.nan).to_numpy(),
                               windows["iat_std_d_s"].cast(pl.Float64).fill_null(np.nan).to_numpy())}))
    levels = sql.table(con, "level_gaps", order_by="dimension, level")
    frames = {name: _level_frame(levels.filter(pl.col("dimension") == name)) for name in ("group", "model", "service")}
    iat_sample = sql.table(con, "iat_sample")["iat_s"].cast(pl.Float64).to_numpy()
    window_sample = sql.table(con, "window_iat_sample").cast({"window_idx": pl.Int64, "iat_s": pl.Float64})
    return GapResults(summary=summary, longest=longest, window_gaps=window_gaps, group_gaps=frames["group"],
                      model_gaps=frames["model"], service_gaps=frames["service"], iat_sample=iat_sample,
                      window_sample=window_sample)


def _level_frame(levels: pl.DataFrame) -> pl.DataFrame:
    mean = levels["iat_mean_s"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    std = levels["iat_std_s"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    return _nulls(pl.DataFrame({"level": levels["level"], "requests": levels["requests"].cast(pl.Int64),
                                "gaps": levels["gaps"].cast(pl.Int64), "iat_mean_s": levels["iat_mean_s"].cast(pl.Float64),
                                "iat_cv": cv(mean, std)}))
