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
from servetrace.reuse.analysis import Reuse, analyze, with_tree
from servetrace.stages import sql
from servetrace.stages.context import Context, fmt, pct



def session_codes(requests: str | Path) -> np.ndarray | None:
    """Session per request (file order) from the session_id column, keyed by the row of the
    session's first request (as sql/sessions/session_keys.sql keys it); a null is its own session."""
    col = pl.from_arrow(io.read_parquet(requests, ["session_id"])).to_series()
    if col.null_count() == len(col):
        return None
    rows = np.arange(len(col), dtype=np.int64)
    first = col.to_frame("s").with_columns(k=pl.Series(rows)).select(pl.col("k").min().over("s"))["k"].to_numpy()
    return np.where(col.is_null().to_numpy(), rows, first)


def reuse_of(requests: str | Path, ctx: Context, con=None) -> Reuse | None:
    """The block reuse analysis: numpy on DuckDB; on Spark (`con`) the set-based SQL
    (reuse/aggregates.py), with the prefix tree, groups and inferred sessions read on the driver
    where the trace has at most `tree_max` references."""
    if not ctx.has_hash_ids or not ctx.rows:
        return None
    sessions = lambda: session_codes(requests) if ctx.has("session_id") else None
    t = ctx.settings.stages.reuse
    if getattr(con, "engine", "duckdb") != "spark":
        return analyze(requests, sessions=sessions(), seed=ctx.settings.seed, t=t)
    reuse = analyze_on(con, seed=ctx.settings.seed, t=t)
    if reuse.values["blocks"] > t.tree_max:  # no tree: neither the sessions nor the inputs are read
        return with_tree(reuse, requests, np.zeros(0, np.int64), None, t)
    inp = pl.from_arrow(io.read_parquet(requests, ["input_tokens"]))["input_tokens"].fill_null(0).cast(pl.Int64).to_numpy()
    return with_tree(reuse, requests, inp, sessions(), t)


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
            pl.col("pid").cast(pl.String), (pl.col("depth_blocks") * reuse.block_size).alias("depth_tokens"))
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
