"""Lengths: input, output and reasoning token quantiles and moments, family fits, the joint
structure of input and output, and drift of the distributions between periods."""

from __future__ import annotations

import numpy as np
import polars as pl

from servetrace.findings import Absent, Finding, absent
from servetrace.stages import sql
from servetrace.settings import DEFAULTS, StageSettings
from servetrace.stages.context import Context, fmt
from servetrace.stats import correlation, families
from servetrace.stats.changes import change_points

FIELDS = ("input", "output", "reason")


def correlations(x: np.ndarray, y: np.ndarray, requests: np.ndarray | None = None) -> dict:
    """Pearson, Spearman and Kendall (tau-b) over all rows; absent where undefined.

    x, y: distinct (input, output) pairs and `requests` how many rows have each (exact over the
    rows, see servetrace.stats.correlation); without `requests`, one row per pair."""
    w = np.ones(len(x), dtype=np.int64) if requests is None else np.asarray(requests)
    found = correlation.correlations(x, y, w)
    if found is None:
        reason = "fewer than 3 rows" if int(w.sum()) < 3 else "a constant column"
        return absent(f"correlation undefined: {reason}")
    return found


def length_drift(hist: pl.DataFrame, period_s: float, t: StageSettings = DEFAULTS.stages) -> pl.DataFrame:
    """Per period (counted from the origin) and field: KS distance and Wasserstein distance (in
    decades of tokens) between the period's binned length distribution and the whole trace's, KS
    to the previous period with enough rows, and whether that step is a change point."""
    out = []
    hist = hist.with_columns(pl.when(pl.col("bin_idx") == -1000).then(-1).otherwise(pl.col("bin_idx")).alias("bin_idx"))
    for field in sorted(hist["field"].unique().to_list()):  # one iteration per length field
        h = hist.filter(pl.col("field") == field)
        wide = h.pivot(on="bin_idx", index="period_idx", values="requests", aggregate_function="sum").sort("period_idx").fill_null(0)
        bins = sorted(int(c) for c in wide.columns if c != "period_idx")
        m = wide.select([str(b) for b in bins]).to_numpy().astype(float)
        dense = np.zeros((m.shape[0], bins[-1] - bins[0] + 1))
        dense[:, np.array(bins) - bins[0]] = m
        n = dense.sum(axis=1)
        keep = n >= t.min_drift_rows
        if keep.sum() < 2:
            continue
        dense, n, periods = dense[keep], n[keep], wide["period_idx"].to_numpy()[keep]
        cdf = np.cumsum(dense, axis=1) / n[:, None]
        total = np.cumsum(dense.sum(axis=0)) / n.sum()
        ks_prev = np.concatenate([[np.nan], np.abs(np.diff(cdf, axis=0)).max(axis=1)])
        out.append(pl.DataFrame({
            "field": field,
            "period_idx": periods,
            "period_start_s": periods * period_s,
            "requests": n.astype(np.int64),
            "ks_vs_all": np.abs(cdf - total).max(axis=1),
            "wasserstein_log10_vs_all": np.abs(cdf - total).sum(axis=1) * (1 / t.drift_bins_per_decade),
            "ks_vs_previous": ks_prev,
            "change_point": change_points(ks_prev, n, t.drift_ks, t.drift_alpha),
        }))
    return pl.concat(out) if out else pl.DataFrame()


def fitted_shares(hist: pl.DataFrame, fits_by_field: dict) -> pl.DataFrame:
    """Add, per histogram bin, the share each fitted family expects there (zero bin: none)."""
    parts = []
    for field in hist["field"].unique(maintain_order=True).to_list():  # one per length field
        h = hist.filter(pl.col("field") == field).sort("bin_idx")
        positive = 1 - float(h.filter(pl.col("bin_idx") == -1000)["share"].sum())
        for fam, fit in fits_by_field.get(field, {}).items():
            lo = families.iat_cdf(fam, fit["params"], h["bin_lo"].to_numpy()[None, :] - 0.5)[0]
            hi = families.iat_cdf(fam, fit["params"], h["bin_hi"].to_numpy()[None, :] - 0.5)[0]
            share = np.where(h["bin_idx"].to_numpy() == -1000, np.nan, (hi - lo) * positive)
            h = h.with_columns(pl.Series(f"{fam}_share", share))
        parts.append(h)
    return pl.concat(parts, how="diagonal") if parts else hist


def length_fit_curves(fits_by_field: dict, hist: pl.DataFrame) -> pl.DataFrame:
    """Long form (field, family, tokens, cdf): each fitted family's CDF at the histogram bin edges."""
    parts = []
    for field, fits in fits_by_field.items():  # one per length field and family
        tokens = np.unique(hist.filter((pl.col("field") == field) & (pl.col("bin_hi") > 0))["bin_hi"].to_numpy())
        for fam, fit in fits.items():
            cdf = families.iat_cdf(fam, fit["params"], tokens[None, :] - 0.5)[0]
            parts.append(pl.DataFrame({"field": field, "family": fam, "tokens": tokens, "cdf": cdf}))
    return pl.concat(parts) if parts else pl.DataFrame()


def field_summary(q: dict, fits: dict | None, t: StageSettings = DEFAULTS.stages) -> dict:
    out = {k: q[k] for k in ("requests", "mean", "std", "cv", "min", "p10", "p25", "p50", "p75", "p90", "p95", "p99", "max")}
    if fits:
        best = families.chosen_fit(fits, t.ks_fits, t.bic_margin)
        out["best_fit"] = {**best, "sample": int(fits[best["family"]].get("n", 0)) or None}
        out["fits"] = {f: families.row_fit(fits, f) for f in fits}
    else:
        out["best_fit"] = absent(f"fewer than {t.min_length_fit} positive values")
    return out


def lengths(con, ctx: Context) -> tuple[Finding | Absent, dict]:
    if not (ctx.has("input_tokens") or ctx.has("output_tokens")):
        return Absent("lengths", "input_tokens and output_tokens are entirely null"), {}
    for staging in ("stg_length_counts", "stg_length_pairs"):  # small: value counts, distinct pairs
        sql.run_sql(con, staging)
    quantiles = sql.table(con, "length_quantiles", order_by="field, dimension, level")
    sql.sample_rows(con, ctx.rows, ctx.sample_p)
    sample = sql.table(con, "stg_length_sample")
    t = ctx.settings.stages
    fits_by_field = {}
    for field in FIELDS:  # one fit per length field
        x = sample.filter((pl.col("field") == field) & (pl.col("tokens") > 0))["tokens"].to_numpy()
        if len(x) >= t.min_length_fit:
            fits_by_field[field] = families.fit_length_families(x)
            for fit in fits_by_field[field].values():
                fit["n"] = len(x)
    hist = fitted_shares(sql.table(con, "length_hist", order_by="field, bin_idx"), fits_by_field)
    pairs = con.sql("select input_tokens, output_tokens, requests from stg_length_pairs").fetchnumpy()
    corr = correlations(pairs["input_tokens"], pairs["output_tokens"], pairs["requests"])
    del pairs
    tables = {
        "length_quantiles": quantiles,
        "length_hist": hist,
        "length_joint": sql.table(con, "length_joint", order_by="input_lo, output_lo"),
        "conditional_output": sql.table(con, "conditional_output", order_by="bucket"),
    }
    period_s = sql.sql_variables_value(con, "drift_bin_s")
    drift = length_drift(sql.table(con, "length_drift_hist"), period_s, t)
    curves = length_fit_curves(fits_by_field, hist)
    if curves.height:
        tables["length_fit"] = curves
    if drift.height:
        tables["length_drift"] = drift
    overall = {r["field"]: r for r in quantiles.filter(pl.col("dimension") == "all").iter_rows(named=True)}
    values = {}
    for field in FIELDS:
        values[field] = (field_summary(overall[field], fits_by_field.get(field), t) if field in overall
                         else absent(f"{field}_tokens entirely null"))
    values["correlation"] = corr
    values["drift"] = _drift_summary(drift, period_s, t)
    values["fit_sample_note"] = (f"families fitted by maximum likelihood on a seeded sample of at most "
                                 f"{ctx.settings.fit_sample:,} rows per field, positive values only; chosen among those with KS <= {t.ks_fits:g} (all when "
                                 f"none) by BIC, the simplest within {t.bic_margin:g} of the smallest")
    return Finding("lengths", values, _statement(values, t), list(tables)), tables


def _drift_summary(drift: pl.DataFrame, period_s: float, t: StageSettings) -> dict:
    if drift.height == 0:
        return absent("fewer than two periods with enough rows")
    out = {"period_s": period_s}
    for field in drift["field"].unique().sort().to_list():
        d = drift.filter(pl.col("field") == field)
        changes = d.filter(pl.col("change_point"))
        out[field] = {"periods": d.height, "ks_vs_all_max": d["ks_vs_all"].max(),
                      "ks_vs_all_median": d["ks_vs_all"].median(),
                      "wasserstein_log10_max": d["wasserstein_log10_vs_all"].max(),
                      "ks_vs_previous_median": d["ks_vs_previous"].drop_nans().median(),
                      "change_points": [{"period": int(r["period_idx"] - d["period_idx"][0]) + 1,
                                         "period_start_s": r["period_start_s"], "ks_vs_previous": r["ks_vs_previous"]}
                                        for r in changes.iter_rows(named=True)]}
    out["change_point_rule"] = (f"KS to the previous period > {t.drift_ks:g} and beyond its "
                                f"p = {t.drift_alpha:g} two-sample critical value")
    return out


def _statement(v: dict, t: StageSettings) -> str:
    parts = []
    for field in ("input", "output"):
        f = v[field]
        if "absent" in f:
            continue
        fit = f["best_fit"]
        fam = ("" if "family" not in fit else f", {fit['family']} fits best (KS {fmt(fit['ks'], 2)})" if fit["fits"]
               else f", no family fits (closest {fit['family']}, KS {fmt(fit['ks'], 2)} > {fmt(fit['ks_max'], 2)}: "
                    "the bundle samples the empirical PMF)")
        parts.append(f"{field} median {fmt(f['p50'])}, p99 {fmt(f['p99'])} tokens{fam}")
    corr = v["correlation"]
    corr_text = (f"input and output correlate weakly (Spearman {fmt(corr['spearman'], 2)})"
                 if "spearman" in corr and abs(corr["spearman"]) < 0.3 else
                 f"input and output correlate (Spearman {fmt(corr['spearman'], 2)})" if "spearman" in corr
                 else "input-output correlation undefined")
    return "Lengths: " + "; ".join(parts) + f"; {corr_text}" + _drift_text(v["drift"], t) + "."


def _drift_text(d: dict, t: StageSettings) -> str:
    """Where the length distributions change: the change points, or that none was found."""
    if "absent" in d:
        return ""
    unit = {86400.0: "day", 3600.0: "hour"}.get(float(d["period_s"]), f"{fmt(d['period_s'])} s period")
    found = [f"{field} at {unit} {', '.join(str(c['period']) for c in d[field]['change_points'])} of "
             f"{d[field]['periods']} (KS to the previous {fmt(max(c['ks_vs_previous'] for c in d[field]['change_points']), 2)})"
             for field in ("input", "output", "reason") if field in d and d[field]["change_points"]]
    return (f"; the length distribution changes: {'; '.join(found)}" if found
            else f"; no {unit} differs from the one before (change point: KS > {t.drift_ks:g}, p < {t.drift_alpha:g})")
