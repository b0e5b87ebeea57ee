"""The bundle fit computed in memory, the whole table at once (the fit before it was streamed):
the reference the streamed fit must equal. Polars group-bys over every row: inter-arrivals by a
per-client diff, moments by mean / std, the Weibull sums by a join, Spearman by polars' ranks."""

from __future__ import annotations

import polars as pl

from servetrace.bundle import arrivals, lengths, sums
from servetrace.rows import read
from servetrace.bundle.arrival_model import with_arrival_model
from servetrace.bundle.fit import OTHER, Aggregates, assemble, choose_grouping
from servetrace.bundle.model import CATEGORY_FIELDS
from servetrace.settings import Settings
from servetrace.stats.clock import clock_of


def key_expr(cols: list[str]) -> pl.Expr:
    """A client's name from its grouping columns (nulls as "(none)", joined by "|")."""
    if not cols:
        return pl.lit("all")
    parts = [pl.col(c).cast(pl.String).fill_null("(none)") for c in cols]
    return parts[0] if len(parts) == 1 else pl.concat_str(parts, separator="|")


def reference_bundle(requests: pl.DataFrame, settings: Settings, source: dict) -> dict:
    window_s = int(settings.window_s)
    dataset_window_s = max(window_s, int(round(settings.fit.dataset_window_s / window_s)) * window_s)
    chosen = choose_grouping(read.frame_batches(requests), requests.columns, settings.group_by)
    group_name, cols = chosen.name, list(chosen.columns)
    requests = requests.sort("arrival_s", maintain_order=True)
    if "failed" not in requests.columns:
        requests = requests.with_columns(pl.lit(False).alias("failed"))
    t0, t1 = float(requests["arrival_s"].min()), float(requests["arrival_s"].max())
    g0 = int(t0 // window_s * window_s)
    clock_s = clock_of(requests["arrival_s"].to_numpy(), settings.stages.grid_share, settings.stages.deround_from_s)
    grid = sums.Grid(g0, window_s, dataset_window_s, clock_s)
    key = key_expr(cols)
    counts = requests.group_by(key.alias("client")).len().sort(["len", "client"], descending=[True, False])
    top = counts["client"].to_list()
    merged = {c: (c if i < settings.fit.max_clients - 1 or len(top) <= settings.fit.max_clients else OTHER) for i, c in enumerate(top)}
    names = sorted(set(merged.values()))
    frame = requests.with_columns(
        key.replace_strict(merged).replace_strict({c: i for i, c in enumerate(names)}, return_dtype=pl.Int32).alias("client"),
        grid.window, grid.dataset)
    def gap(*over: str) -> pl.Expr:  # a row's time since the previous arrival of the same `over` values
        d = pl.col("arrival_s").diff()
        return (d.over(*over) if over else d).clip(lower_bound=arrivals.IAT_FLOOR_S)

    # a client's gaps: all of them; a window's: only those with both ends in the window
    frame = frame.with_columns(gap("client").alias("x"), gap("client", "window_start_s").alias("x_window"),
                               gap("window_start_s").alias("x_all"))
    covered = arrivals.covered_seconds(pl.col("window_start_s"), window_s, t0, t1)

    def fits(keys, col, span):
        v = pl.col(col)
        stats = frame.group_by(keys).agg(
            pl.len().alias("requests"), v.count().alias("n_iat"), v.mean().alias("iat_mean"), v.std().alias("iat_std"),
            v.log().sum().alias("sum_log"), v.sum().alias("sum_x"), pl.col("failed").sum().alias("failed"))
        if clock_s:  # per group, the sum over clock ticks of the arrivals in the tick, squared
            tick = ((pl.col("arrival_s") - g0) / clock_s).floor().alias("tick")
            squares = frame.group_by(*keys, tick).len().group_by(keys).agg((pl.col("len").cast(pl.Float64) ** 2).sum().alias("sum_tick_n2"))
            stats = stats.join(squares, on=keys, how="left")
        stats = arrivals.moment_fits(stats, span, clock_s)
        power = (frame.join(stats.select(*keys, "w_shape", "w_scale"), on=keys).filter(pl.col("w_shape").is_finite())
                 .group_by(keys).agg(((v / pl.col("w_scale")) ** pl.col("w_shape")).sum().alias("sum_wpow")))
        return arrivals.choose_family(stats.join(power, on=keys, how="left"))

    per_window = fits(["client", "window_start_s"], "x_window", covered)
    per_client = fits(["client"], "x", max(t1 - t0, arrivals.MIN_COVER_S))
    overall = fits(["window_start_s"], "x_all", covered)
    head = frame.group_by("client", maintain_order=True).head(settings.fit.ks_sample + 1).drop_nulls("x")
    ks = {c: g["x"].to_numpy()[:settings.fit.ks_sample] for (c,), g in head.partition_by("client", as_dict=True).items()}
    nonzero = frame.select((pl.col("failed").fill_null(False) & (pl.col("output_tokens").fill_null(0) != 0)).any()).item()
    category = ("reason" if (frame["reason_tokens"].fill_null(0) > 0).any()
                else "multimodal" if (frame["image_count"].fill_null(0) > 0).any() else "language")
    fields = lengths.length_fields(frame, category)
    value_counts = {n: lengths.with_image_default(fields.group_by("client", "dataset_start_s", n).agg(pl.len().cast(pl.Int64).alias("n")), n)
                    for n in CATEGORY_FIELDS[category]}
    jnames = lengths.joint_fields(category)
    pairs = [(a, b) for i, a in enumerate(jnames) for b in jnames[i + 1:]]
    joint = fields.select("client", *jnames).drop_nulls().group_by("client").agg(
        [pl.corr(a, b, method="spearman").alias(f"rho:{a}:{b}") for a, b in pairs])
    joint = joint.with_columns([pl.Series(f"corr:{a}:{b}", lengths.spearman_to_normal(joint[f"rho:{a}:{b}"].to_numpy()))
                                for a, b in pairs])
    agg = Aggregates(names, group_name, category, frame.height, t0, t1, per_window, per_client, overall, ks,
                     nonzero, value_counts, joint)
    # the arrival model is chosen from generated traces (tests/test_arrival_model.py tests it): the same call
    return with_arrival_model(assemble(agg, settings, source, dataset_window_s, None), requests.lazy())
