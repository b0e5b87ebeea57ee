"""The session model's requests as set-based SQL (sql/sessions/), on either engine's connection:
on Spark the session frame is made where the rows lie, and what reaches the driver is the sample
of whole sessions `session_frame` would keep (about `session_rows` requests, whatever the trace's
size), with each request's turn, gap, think time, growth, new prompt and bundle client. Equal to
`sessions.session_frame` row for row (tests/test_session_sql.py on DuckDB, test_spark_sessions.py
on Spark): the sessions are keyed by their first request's row and sampled by the same hash of
that key (`sessions.session_hash`)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from servetrace import io
from servetrace.ingest.parents import sessions_from_parents
from servetrace.reuse.analysis import Reuse
from servetrace.stages import sql

HASH_MOD = 1_000_000  # a session is kept where its hash mod this is below `session_keep`


def client_names(path, bundle: dict, other: str) -> tuple[dict[str, int], int] | None:
    """(bundle client name -> index, the index of a request of no listed client (`other`'s, else
    -1)), or None when the bundle's clients are not client groups (all, sessions)."""
    cols = bundle["group_by"].split(",")
    if cols == ["all"] or "session_id" in cols or not set(cols) <= set(io.parquet_columns(path)):
        return None
    ids = {c["id"]: i for i, c in enumerate(bundle["clients"])}
    return ids, ids.get(other, -1)


def keep_below(rows: int, max_rows: int) -> int:
    """The hash threshold that keeps about `max_rows` of `rows` requests (every one up to it)."""
    return HASH_MOD if rows <= max_rows else int(HASH_MOD * max_rows / rows)


def has_ids(con) -> bool:
    """Whether any request carries a session id (else the sessions are the prefix chains')."""
    return int(sql.table(con, "session_ids")["n"][0] or 0) > 0


def has_keys(con, reuse: Reuse | None, by_ids: bool) -> bool:
    """Build `session_keys` and `session_shared` on `con` (False without sessions): sessions by their
    ids, else (with block ids) inferred from prefix chains (chain_parents.sql, then the pointer
    jumping of ingest/parents.py over them), and the tokens under a prefix two or more sessions
    share (`reuse_shared`, which names the shared-prefix groups too: reuse/tree_sql.py). All by SQL
    over `reuse_refs` (the block reuse analysis' table on Spark; made here on DuckDB, whose
    analysis is numpy's), so no reference reaches the driver, whatever `tree_max`."""
    chained = not by_ids and reuse is not None
    if not by_ids and not chained:
        return False
    if reuse is not None and reuse.keyed:  # made already, by the prefix stage's reuse_of on this connection
        return True
    if reuse is not None and getattr(con, "engine", "duckdb") != "spark":
        sql.set_variables(con, {"reuse_factors": [1], "reuse_block_size": int(reuse.block_size)})
        sql.run_sql(con, "reuse_refs")
    if chained:
        sql.run_sql(con, "chain_parents")
        sql.run_sql(con, "chats")
        sessions_from_parents(con)
        sql.run_sql(con, "chain_roots")
    else:
        con.register("chain_roots", pa.table({"row_id": pa.array([], pa.int64()), "session": pa.array([], pa.int64())}))
    sql.run_sql(con, "session_keys")
    if reuse is not None:
        sql.run_sql(con, "reuse_shared")
        sql.run_sql(con, "session_shared")
    else:
        con.register("session_shared", pa.table({"row_id": pa.array([], pa.int64()),
                                                 "shared_tokens": pa.array([], pa.int64())}))
    return True


def register_clients(con, names: tuple[dict[str, int], int] | None) -> None:
    ids, default = names if names is not None else ({}, -1)
    con.register("bundle_clients", pa.table({"name": pa.array(list(ids), pa.string()),
                                             "idx": pa.array(list(ids.values()), pa.int64())}))
    sql.set_variables(con, {"session_client_default": int(default)})


def frame_on(con, rows: int, max_rows: int) -> pl.DataFrame:
    """`session_frame`'s requests (with `turns`, `first_in` and the request's own bundle `client`),
    from `session_keys` and `bundle_clients` on `con`, in session and turn order."""
    requests_on(con, rows, max_rows)
    frame = con.sql("select * from session_requests").pl()
    ints = ["session", "row_id", "turn", "turns", "client"]
    return (frame.with_columns(*[pl.col(c).cast(pl.Int64) for c in ints],
                               *[pl.col(c).cast(pl.Float64) for c in ("arrival_s", "latency_s", "left_s", "gap_s", "think_s")])
            .rename({"row_id": "row"}).sort(["session", "turn"]))


def requests_on(con, rows: int, max_rows: int) -> None:
    """Build `session_requests` on `con` (after `has_keys` and `register_clients`): the sampled
    sessions' requests, kept where they lie (bundle/session_stats.py aggregates them)."""
    sql.set_variables(con, {"session_keep": keep_below(rows, max_rows)})
    sql.materialize(con, "session_requests")


def start_arrival_model_on(bundle: dict, con, path, t) -> dict:
    """`arrival_model.with_start_arrival_model` on `con` (after `has_keys`): the arrival model fitted
    on the sessions' first requests from their counts per modulation bin (pooled and per
    dominant client) and their first `max_rows` arrivals, all aggregated or bounded by SQL."""
    from servetrace.bundle.arrival_model import arrival_model_of, dominant_clients

    if not bundle.get("sessions") or bundle.get("agents"):
        return bundle
    sql.set_variables(con, {"session_g0": float(bundle["aggregate"]["window_start_s"][0]),
                            "session_bin_s": float(t.modulation.bin_s), "session_head_rows": int(t.max_rows)})
    bins = sql.table(con, "session_start_bins").with_columns(pl.col("bin").cast(pl.Int64), pl.col("n").cast(pl.Int64))
    starts, rows = int(bins["n"].sum()), io.parquet_rows(path)
    if starts < 3 or not rows:
        return bundle
    head = sql.table(con, "session_start_head", "arrival_s, row_id")["arrival_s"].cast(pl.Float64).to_numpy()
    pooled = bins.group_by("bin").agg(pl.col("n").sum())
    own = {}
    if set(bundle["group_by"].split(",")) <= set(io.parquet_columns(path)):
        own = {cid: (part["bin"].to_numpy(), part["n"].to_numpy())
               for cid in dominant_clients(bundle, t) for part in [bins.filter(pl.col("group_key") == cid)]}
    return arrival_model_of(bundle, head, pooled["bin"].to_numpy(), pooled["n"].to_numpy(), t, own, starts / rows)
