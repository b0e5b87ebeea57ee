"""The block reuse analysis as set-based SQL (sql/reuse/), run by either engine's connection over
`requests`, so on Spark no reference reaches the driver: what comes back is the block-size
profile, the infinite prefix cache's hits per re-blocking factor, the reused and new tokens per
request as quantiles, the LRU curve's hit counts per capacity, the reuse-distance histogram and a
bounded sample of distances.

Equal to `analysis.analyze` (numpy) on the same trace: exactly where its curve is exact (the
prefix ids differ, equal ids do not); where it samples (SHARDS past `exact_max` references), by
another spatial sample of the same rate, so within SHARDS' error; the infinite cache's hit rate is
counted over every reference here (first uses, no stack distances), where numpy estimates it
from its sample. The distance sample is drawn by another seeded rule (tests compare its
distribution). DuckDB keeps numpy, faster on one machine; tests/test_reuse_sql.py holds the two
equal and Spark equal to DuckDB. The prefix tree and the shared-prefix groups: reuse/tree_sql.py."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from servetrace.reuse.analysis import Reuse
from servetrace.reuse.blocks import block_size_from
from servetrace.reuse.curve import capacity_ladder, curve_frame, histogram_frame
from servetrace.settings import ReuseSettings
from servetrace.stages import sql

SHARDS_MOD = 1 << 24  # reuse_sample.sql: a prefix id's low 24 bits against the threshold
POWERS = [1 << k for k in range(63)]


def _q(row: dict, name: str) -> dict:
    return {"mean": _float(row[f"{name}_mean"]), "p50": _float(row[f"{name}_p50"]), "p90": _float(row[f"{name}_p90"])}


def _float(x) -> float | None:
    return None if x is None else float(x)


def plan(totals: dict[int, int], t: ReuseSettings) -> pa.Table:
    """reuse_plan: per factor, every reference (threshold 2^24, rate 1) up to `exact_max`, else a
    SHARDS sample of about `sampled_target` (threshold as numpy's `shards_sample` rounds it)."""
    rates = {m: 1.0 if n <= t.exact_max else t.sampled_target / n for m, n in totals.items()}
    return pa.table({"m": pa.array(list(rates), pa.int64()),
                     "threshold": pa.array([SHARDS_MOD if r >= 1 else max(1, int(round(r * SHARDS_MOD)))
                                            for r in rates.values()], pa.int64()),
                     "rate": pa.array(list(rates.values()), pa.float64())})


def analyze_on(con, block_size: int | None = None, seed: int = 0, t: ReuseSettings = ReuseSettings()) -> Reuse:
    """The reuse analysis of `requests` on `con` (either engine's), without the prefix tree (see
    `tree_sql.with_groups`)."""
    profile = sql.table(con, "reuse_profile", "block_size").with_columns(pl.col("exact_rows").cast(pl.Int64))
    top = profile.row(0, named=True)
    basis = "given"
    if block_size is None:
        median = top["median_tokens_per_block"]
        block_size, basis = block_size_from(int(top["eligible_rows"] or 0), dict(profile.select("block_size", "exact_rows").iter_rows()),
                                            None if median is None else float(median))
    factors = [1, *(s // block_size for s in t.coarser_blocks if s > block_size and s % block_size == 0)]
    sql.set_variables(con, {"reuse_factors": factors, "reuse_block_size": int(block_size), "reuse_seed": int(seed),
                            "reuse_powers": POWERS, "reuse_sample_size": int(t.distance_sample)})
    sql.run_sql(con, "reuse_refs")
    sql.run_sql(con, "reuse_requests")
    infinite = {r["m"]: r for r in sql.table(con, "reuse_infinite").iter_rows(named=True)}
    totals = {m: int(infinite[m]["refs"]) if m in infinite else 0 for m in factors}
    con.register("reuse_plan", plan(totals, t))
    rates = dict(zip(factors, plan(totals, t)["rate"].to_pylist()))
    sql.set_variables(con, {"reuse_bits": list(range(max(max(totals.values()), 1).bit_length()))})
    sql.run_sql(con, "reuse_sample")
    sql.run_sql(con, "reuse_distances")
    counts = sql.table(con, "reuse_curve_counts", "m, capacity")
    curves = []
    for m in factors:
        got = counts.filter(pl.col("m") == m)
        sampled = int(got["sampled"][0]) if got.height else 0
        distinct = (int(got["sampled_distinct"][0]) if got.height else 0) / rates[m]
        ladder = capacity_ladder(int(distinct))
        hits = dict(zip(got["capacity"].cast(pl.Int64).to_list(), got["hits"].cast(pl.Int64).to_list()))
        inf = infinite.get(m, {"hits": 0, "refs": 0})
        curves.append(curve_frame(block_size * m, ladder, np.array([hits.get(int(c), 0) for c in ladder]), sampled,
                                  int(inf["hits"] or 0), rates[m], int(inf["refs"] or 0)))
    bins = sql.table(con, "reuse_distance_hist", "k")
    counts_by_bin = np.zeros(int(bins["k"].max()) + 1 if bins.height else 1, np.int64)
    counts_by_bin[bins["k"].cast(pl.Int64).to_numpy()] = bins["refs"].cast(pl.Int64).to_numpy()
    source = counts.filter(pl.col("m") == 1)
    hist = histogram_frame(counts_by_bin, int(source["sampled"][0]) if source.height else 0)
    sample = np.sort(sql.table(con, "reuse_distance_sample")["distance"].cast(pl.Int64).to_numpy())
    tokens = sql.table(con, "reuse_tokens").row(0, named=True)
    curve = pl.concat(curves)
    values = {"block_size": block_size, "block_size_basis": basis, "blocks": totals[1], "requests": int(top["requests"]),
              "infinite_hit_rate": float(curve.filter(pl.col("capacity_blocks").is_null())["hit_rate"][0]),
              "lru_method": "exact" if rates[1] >= 1 else "shards",
              "shards_rate": None if rates[1] >= 1 else float(rates[1]),
              "block_sizes": sorted(int(block_size * m) for m in factors),
              "reused_tokens": _q(tokens, "reused"), "new_tokens": _q(tokens, "new"),
              "reused_token_share": float((tokens["reused_sum"] or 0) / max(int(tokens["input_sum"] or 0), 1))}
    return Reuse(block_size, basis, curve, hist, sample, values)
