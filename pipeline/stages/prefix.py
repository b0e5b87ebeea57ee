"""Prefix reuse (when hash_ids are present): the LRU hit rate against cache capacity per block
size (exact stack distances, or SHARDS on large traces), reuse distances, reused and new tokens
per request, the prefix tree and the shared-prefix groups (`servetrace.reuse`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from servetrace import io
from servetrace.findings import Absent, Finding
from servetrace.reuse.aggregates import analyze_on
from servetrace.reuse.analysis import Reuse, analyze
from servetrace.reuse.tree_sql import with_groups
from servetrace.rows import read
from servetrace.stages import sql
from servetrace.stages.context import Context, fmt, pct



def session_codes(requests: str | Path) -> np.ndarray | None:
    """Session per request (file order) from the session_id column, keyed by the row of the
    session's first request (as sql/sessions/session_keys.sql keys it); a null is its own session;
    None when no request has one (told by the Parquet statistics before a value is read)."""
    if "session_id" in read.all_null(requests):
        return None
    col = pl.from_arrow(io.read_parquet(requests, ["session_id"])).to_series()
    if col.null_count() == len(col):
        return None
    rows = np.arange(len(col), dtype=np.int64)
    first = col.to_frame("s").with_columns(k=pl.Series(rows)).select(pl.col("k").min().over("s"))["k"].to_numpy()
    return np.where(col.is_null().to_numpy(), rows, first)


def reuse_of(requests: str | Path, ctx: Context, con=None) -> Reuse | None:
    """The block reuse analysis: numpy on DuckDB; on Spark (`con`) the set-based SQL
    (reuse/aggregates.py), then the sessions' keys (bundle/session_sql.py), the prefix tree and the
    shared-prefix groups (reuse/tree_sql.py), none of which reads a reference on the driver."""
    if not ctx.has_hash_ids or not ctx.rows:
        return None
    t = ctx.settings.stages.reuse
    if getattr(con, "engine", "duckdb") != "spark":
        return analyze(requests, sessions=session_codes(requests) if ctx.has("session_id") else None,
                       seed=ctx.settings.seed, t=t)
    from servetrace.bundle import session_sql

    reuse = analyze_on(con, seed=ctx.settings.seed, t=t)
    by_ids = ctx.has("session_id") and session_sql.has_ids(con)
    session_sql.has_keys(con, reuse, by_ids)
    return with_groups(reuse, con, ctx.rows, by_ids, ctx.settings.stages.top_prefix_groups,
                       ctx.settings.fit.sessions.max_groups)


def prefix(con, ctx: Context, reuse: Reuse | None) -> tuple[Finding | Absent, dict]:
    if not ctx.has_hash_ids:
        return Absent("prefix", "no hash_ids column (KV-cache block hashes) in the trace"), {}
    over_time = sql.table(con, "prefix_reuse", order_by="window_idx")
    blocks = int(over_time["blocks"].sum()) if over_time.height else 0
    if blocks == 0 or reuse is None:
        return Absent("prefix", "hash_ids present but empty"), {"prefix_reuse": over_time}
    tables = {"prefix_reuse": over_time, "prefix_lru_curve": reuse.curve, "prefix_reuse_distance": reuse.distance_hist}
    if reuse.groups is not None:
        tables["prefix_groups"] = reuse.groups.head(ctx.settings.stages.top_prefix_groups).with_columns(
            (pl.col("depth_blocks") * reuse.block_size).alias("depth_tokens"))
    v = reuse.values
    curve = reuse.curve.filter(pl.col("block_size") == reuse.block_size)
    ladder = curve.filter(pl.col("capacity_blocks").is_not_null())
    half = ladder.filter(pl.col("hit_rate") >= v["infinite_hit_rate"] / 2)["capacity_tokens"]
    values = {
        "blocks": blocks,
        "seen_share": int(over_time["seen_blocks"].sum()) / blocks,
        "ideal_hit_rate": int(over_time["prefix_hit_blocks"].sum()) / blocks,
        **v,
        "lru_hit_rate": {str(c): h for c, h in zip(ladder["capacity_tokens"], ladder["hit_rate"])},
        "half_hit_capacity_tokens": int(half[0]) if len(half) else None,
        "definition": ("ideal_hit_rate / infinite_hit_rate: leading blocks of each request already seen (an "
                       "infinite prefix cache); lru_hit_rate: the same under LRU at a capacity in tokens "
                       "(block size x blocks), every block used becoming most recent"),
    }
    where = f"; half of that needs {fmt(values['half_hit_capacity_tokens'])} tokens of LRU cache" if len(half) else ""
    statement = (f"{pct(values['seen_share'])} of KV-cache blocks ({v['block_size']} tokens, {v['block_size_basis']}) "
                 f"were seen in an earlier request; an infinite prefix cache would hit "
                 f"{pct(values['ideal_hit_rate'])} of blocks{where} ({v['lru_method']} LRU curve).")
    return Finding("prefix", values, statement, list(tables)), tables
