"""The bundle fit as set-based SQL (sql/fit/): the same aggregates as the streamed row fit
(`fit.Fit`: bundle/sums.py's first pass, bundle/ranks.py's second), computed by either engine's
connection over stg_requests, so on Spark no row reaches the driver.

What comes back is aggregated: the clients (at most settings.fit.max_clients), the inter-arrival
sums per (client, window), per client and per window, the Weibull power sums of the second pass
(joined with the first pass's moment-matched parameters, registered as small tables), each
client's first ks_sample inter-arrivals, the length fields' value counts per (client, dataset
window), Spearman's numerators over midranks, requests per modulation bin and the first
arrival-model rows. `fit.assemble` turns them into the bundle, as it does the stream's.
DuckDB keeps the faster one-pass stream; tests/test_fit_sql.py holds the two equal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from servetrace.bundle import arrivals, fit, lengths
from servetrace.bundle.arrival_model import arrival_model_of, dominant_clients
from servetrace.bundle.model import CATEGORY_FIELDS
from servetrace.bundle.ranks import midranks, spearman
from servetrace.errors import ServetraceError
from servetrace.grouping import Grouping
from servetrace.rows.moments import SUMS
from servetrace.settings import Settings
from servetrace.stages import sql
from servetrace.stats import clock
from servetrace.stats.pmf import REASON_BINS

def fit_on(con, settings: Settings, by: Grouping, source: dict, ingest: dict | None = None) -> dict:
    """The bundle (with its arrival model, without the session and prefix models) of the rows of
    stg_requests on `con` (built with the run's variables), grouped by `by`. The fit's tables are
    released when it returns: the bundle holds their numbers."""
    with sql.scope(con):
        return _fit(con, settings, by, source, ingest)


def _fit(con, settings: Settings, by: Grouping, source: dict, ingest: dict | None) -> dict:
    window_s = int(settings.window_s)
    sql.set_variables(con, {"fit_max_clients": int(settings.fit.max_clients), "fit_other": fit.OTHER})
    sql.run_sql(con, "fit_clients")
    s = sql.table(con, "fit_summary").row(0, named=True)
    rows = int(s["requests"] or 0)
    if rows == 0:
        raise ServetraceError(f"{source.get('path')}: no requests to fit")
    t0, t1 = float(s["first_s"]), float(s["last_s"])
    category = "reason" if s["has_reason"] else "multimodal" if s["has_images"] else "language"
    g0, dataset_s, model = fit.grid_start(t0, window_s), fit.dataset_window(settings), settings.fit.arrival_model
    sql.set_variables(con, {
        "fit_g0": g0, "fit_inv_window": 1.0 / window_s, "fit_inv_dataset": 1.0 / dataset_s,
        "iat_floor_s": arrivals.IAT_FLOOR_S, "fit_ks_sample": int(settings.fit.ks_sample), "fit_category": category,
        "fit_reason_bins": float(REASON_BINS), "fit_bin_s": float(model.modulation.bin_s), "fit_head_rows": int(model.max_rows)})
    names = sql.table(con, "fit_client_names", "client")
    order = _python_order(names["client_name"].to_list())

    def fetch(name: str, order_by: str | None = None) -> pl.DataFrame:
        frame = sql.table(con, name, order_by)
        if "client" in frame.columns:
            frame = frame.with_columns(pl.col("client").cast(pl.Int64).replace_strict(order, default=None,
                                                                                      return_dtype=pl.Int32))
        if "window_idx" in frame.columns:
            frame = frame.with_columns((pl.col("window_idx").cast(pl.Int64) * window_s + g0).alias("window_start_s"))
        if "dataset_idx" in frame.columns:
            frame = frame.with_columns((pl.col("dataset_idx").cast(pl.Int64) * dataset_s + g0).alias("dataset_start_s"))
        return frame

    head_sorted = bool(sql.table(con, "fit_head_sorted")["head_sorted"][0])
    head = sql.table(con, "fit_head_first" if head_sorted else "fit_head", "arrival_s, row_id")
    head = head["arrival_s"].cast(pl.Float64).to_numpy()
    clock_s = clock.clock_of_head(head, settings)  # a coarse clock's CVs (bundle/arrivals.py), as the stream fits them
    sql.set_variables(con, {"fit_clock_s": float(clock_s or 0.0)})
    sql.run_sql(con, "fit_rows")
    sums = fetch("fit_sums")
    first = {name: _sums(sums.filter(pl.col("level") == level), keys) for level, name, keys in (
        (1, "per_window", ["client", "window_start_s"]), (2, "per_client", ["client"]), (3, "overall", ["window_start_s"]))}
    per_window, per_client, overall = fit.first_fits(first, window_s, t0, t1, clock_s)
    unorder = {v: k for k, v in order.items()}
    con.register("fit_window_params", _params(per_window, ["client", "window_start_s"], unorder, window_s, g0))
    con.register("fit_client_params", _params(per_client, ["client"], unorder, window_s, g0))
    pw_power = fetch("fit_window_powers").select("client", "window_start_s", "sum_wpow")
    pc_power = fetch("fit_client_powers").select("client", "sum_wpow")
    ks = fetch("fit_ks_sample", "client, k")
    samples = {c: np.asarray(x, dtype=float) for c, x in
               ks.group_by("client", maintain_order=True).agg(pl.col("x").cast(pl.Float64)).iter_rows()}
    sql.run_sql(con, "fit_length_rows")
    counts = _counts(fetch("fit_length_counts"), category)
    jnames = lengths.joint_fields(category)
    ranks = {n: midranks(counts[n], n) for n in jnames}
    sql.run_sql(con, "fit_midranks")
    cross = _cross(fetch("fit_cross_ranks"), jnames)
    agg = fit.Aggregates(sorted(names["client_name"].to_list()), by.name, category, rows, t0, t1,
                         fit.with_power(per_window, _nonempty(pw_power), ["client", "window_start_s"]),
                         fit.with_power(per_client, _nonempty(pc_power), ["client"]), overall, samples,
                         bool(s["nonzero"]), fit.pmf_counts(counts), spearman(ranks, cross, jnames))
    bundle = fit.assemble(agg, settings, source, dataset_s, settings.fit.binning(), ingest)
    bins = sql.table(con, "fit_bins")
    return arrival_model_of(bundle, head, bins["bin"].cast(pl.Int64).to_numpy(), bins["n"].cast(pl.Int64).to_numpy(),
                            model, _client_bins(con, bundle, sorted(names["client_name"].to_list()), unorder, model))


def _client_bins(con, bundle: dict, names: list[str], unorder: dict[int, int], model) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each dominant client's requests per modulation bin (`arrival_model_of`'s `own`); `names`:
    the clients in Python's order, `unorder` from that order to the engine's index."""
    index = {name: i for i, name in enumerate(names)}
    own = {}
    for cid in dominant_clients(bundle, model):
        sql.set_variables(con, {"fit_client": unorder[index[cid]]})
        got = sql.table(con, "fit_client_bins")
        own[cid] = (got["bin"].cast(pl.Int64).to_numpy(), got["n"].cast(pl.Int64).to_numpy())
    return own


def fit_file(requests: str | Path, settings: Settings, engine) -> dict:
    """`servetrace fit --engine ENGINE`: the bundle of DIR/requests.parquet fitted by the set-based
    SQL on that engine, with the session and prefix models."""
    from servetrace import grouping, io
    from servetrace.settings import ingest_of
    from servetrace.schema import HASH_IDS
    from servetrace.stages.context import Context, check_span, sql_variables
    from servetrace.stages.prefix import reuse_of
    from servetrace.stages.quality import trace_profile

    requests = Path(requests)
    if settings.group_by:
        grouping.parse(settings.group_by)  # a bad --group-by fails before any work
    fit.fit_columns(requests, settings.group_by)  # a missing or unreadable table is a clear error
    meta = io.parquet_metadata(requests)
    with engine.connect(requests, settings.memory_limit, settings.threads, requests.parent) as con:
        profile = trace_profile(con)
        ctx = Context(settings, profile, grouping.from_profile(profile, settings.group_by), meta,
                      HASH_IDS in io.parquet_columns(requests))
        if not ctx.rows:
            raise ServetraceError(f"{meta.get('servetrace.source', requests.name)}: no requests to fit")
        check_span(ctx.span_s, settings.window_s, requests)
        sql.set_variables(con, sql_variables(ctx))
        sql.run_sql(con, "stg_requests")
        bundle = fit_on(con, settings, ctx.grouping, fit.source_of(requests), ingest_of(meta))
        reuse = reuse_of(requests, ctx, con)  # on Spark the set-based reuse analysis (reuse/aggregates.py)
        return fit.with_reuse_models(bundle, requests, settings, reuse, con)  # the session requests by SQL (session_sql.py)


def _python_order(names: list[str]) -> dict[int, int]:
    """SQL's client index (its names in the engine's string order) -> the index in Python's sorted
    order (the stream's): equal for byte-wise collations, remapped otherwise."""
    python = {name: i for i, name in enumerate(sorted(names))}
    return {i: python[name] for i, name in enumerate(names)}


def _sums(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    return frame.select(*[pl.col(k).cast(pl.Int32 if k == "client" else pl.Int64) for k in keys],
                        *[pl.col(c).cast(pl.Float64 if c.startswith(("sum", "m2")) else pl.Int64) for c in SUMS])


def _params(fits: pl.DataFrame, keys: list[str], unorder: dict[int, int], window_s: int, g0: int) -> pa.Table:
    """The first pass's Weibull parameters where finite, keyed as the SQL keys them."""
    ok = fits.filter(pl.col("w_shape").is_not_null() & pl.col("w_shape").is_finite()
                     & pl.col("w_scale").is_not_null() & pl.col("w_scale").is_finite())
    cols = [pl.col("client").replace_strict(unorder, return_dtype=pl.Int32)]
    if "window_start_s" in keys:
        cols.append(((pl.col("window_start_s") - g0) // window_s).cast(pl.Int64).alias("window_idx"))
    return ok.select(*cols, pl.col("w_shape").cast(pl.Float64), pl.col("w_scale").cast(pl.Float64)).to_arrow()


def _nonempty(frame: pl.DataFrame) -> pl.DataFrame | None:
    return frame.with_columns(pl.col("sum_wpow").cast(pl.Float64)) if frame.height else None


def _counts(long: pl.DataFrame, category: str) -> dict[str, pl.DataFrame]:
    """field -> (client, dataset_start_s, field, _joint, n), as the stream's LengthCounts gives them."""
    out = {}
    for name in CATEGORY_FIELDS[category]:
        value = pl.col("value").cast(pl.Float64 if name == "reason_ratio" else pl.Int64)  # the others: whole numbers
        out[name] = long.filter(pl.col("field") == name).select(
            pl.col("client"), pl.col("dataset_start_s"), value.alias(name), pl.col("joint").alias("_joint"),
            pl.col("n").cast(pl.Int64))
    return out


def _cross(frame: pl.DataFrame, jnames: tuple[str, ...]) -> pl.DataFrame | None:
    """(client, x:a:b) from the slots' sums of products (x12, x13, x23)."""
    if not frame.height:
        return None
    slots = {(0, 1): "x12", (0, 2): "x13", (1, 2): "x23"}
    return frame.select("client", *[pl.col(slots[(i, j)]).cast(pl.Float64).alias(f"x:{a}:{b}")
                                    for i, a in enumerate(jnames) for j, b in enumerate(jnames) if i < j])
