"""Arrivals and burstiness: rate, inter-arrival CV, dispersion of counts, family fits overall,
per window and per service / model / group."""

from __future__ import annotations

import numpy as np
import polars as pl

from servetrace.findings import Absent, Finding, absent
from servetrace.stages import sql
from servetrace.settings import DEFAULTS, StageSettings
from servetrace.stages.context import Context, fmt
from servetrace.stages.gaps import GapResults
from servetrace.stats import families, rounded



def peak_to_mean(window_rates: pl.DataFrame) -> float | None:
    """Largest window rate over the mean window rate, over the whole windows of the trace (empty
    ones too; a partial last window is left out)."""
    rates = window_rates.filter(pl.col("full"))["rate_rps"].to_numpy()
    return float(rates.max() / rates.mean()) if len(rates) and rates.mean() > 0 else None


def window_fits(samples: pl.DataFrame, t: StageSettings = DEFAULTS.stages) -> pl.DataFrame:
    """Per window: the four families fitted by MLE on its (sampled) gaps, KS of each, the best."""
    counts = samples.group_by("window_idx").len().filter(pl.col("len") >= t.min_window_gaps)
    samples = samples.join(counts.select("window_idx"), on="window_idx").sort("window_idx", "iat_s")
    if samples.height == 0:
        return pl.DataFrame(schema={"window_idx": pl.Int64, "gaps_fitted": pl.Int64, "best_family": pl.String})
    grouped = samples.group_by("window_idx", maintain_order=True).agg(pl.col("iat_s"))
    x = families.padded([np.asarray(v) for v in grouped["iat_s"].to_list()])
    fits = families.fit_iat_rows(x)
    cols = {"window_idx": grouped["window_idx"], "gaps_fitted": np.isfinite(x).sum(axis=1),
            "best_family": families.best_family(fits, t.bic_margin, t.ks_fits).tolist()}
    for fam, fit in fits.items():
        for name, value in fit["params"].items():
            cols[f"{fam}_{name}"] = value
        cols[f"{fam}_ks"] = fit["ks"]
        cols[f"{fam}_aic"] = fit["aic"]
    return pl.DataFrame(cols)


def iat_hist(sample: np.ndarray, fits: dict, per_decade: int = DEFAULTS.stages.iat_bins_per_decade) -> pl.DataFrame:
    """Log-binned histogram of the sampled gaps with each fitted family's expected share per bin."""
    lo_exp = np.floor(np.log10(sample.min()) * per_decade)
    hi_exp = np.ceil(np.log10(sample.max()) * per_decade) + 1
    edges = 10 ** (np.arange(lo_exp, hi_exp + 1) / per_decade)
    counts, _ = np.histogram(sample, edges)
    width = np.diff(edges)
    cols = {"iat_s": np.sqrt(edges[:-1] * edges[1:]), "bin_lo_s": edges[:-1], "bin_hi_s": edges[1:],
            "gaps": counts, "share": counts / counts.sum(), "density": counts / counts.sum() / width}
    for fam, fit in fits.items():
        cdf = families.iat_cdf(fam, fit["params"], edges[None, :])[0]
        cols[f"{fam}_share"] = np.diff(cdf)
    return pl.DataFrame(cols)


def iat_fit_curves(hist: pl.DataFrame, fits: dict) -> pl.DataFrame:
    """Long form (family, iat_s, density): each fitted family's mean density over each histogram bin."""
    width = (hist["bin_hi_s"] - hist["bin_lo_s"]).to_numpy()
    return pl.concat([pl.DataFrame({"family": fam, "iat_s": hist["iat_s"],
                                    "density": hist[f"{fam}_share"].to_numpy() / width}) for fam in fits])


def overall_fit(sample: np.ndarray, grid_s: float | None,
                t: StageSettings = DEFAULTS.stages) -> tuple[dict | None, dict, np.ndarray]:
    """Families fitted to the sampled raw gaps: when timestamps are rounded (a detected grid, or
    ties below it), by the likelihood of the gaps as the grid shows them (stats.rounded: ties are
    gaps shorter than the resolution, not dropped), else by the closed-form MLE of the positive gaps.
    Returns the chosen fit (with `grid_s`), all fits, and the positive gaps (for the histogram)."""
    sample = np.sort(sample[np.isfinite(sample) & (sample >= 0)])
    positive = sample[sample > 0]
    if len(positive) < t.min_fit_gaps:
        return None, {}, positive
    delta = rounded.resolution_of(sample, grid_s)
    fits = rounded.fit_rounded(sample, delta, t.rounded_exact_below) if delta else families.fit_iat_rows(positive[None, :])
    if not fits:
        return None, {}, positive
    return {**families.chosen_fit(fits, t.ks_fits, t.bic_margin), "grid_s": delta}, fits, positive


def arrivals_by_group(gaps: GapResults, ctx: Context, top_groups: list[str]) -> pl.DataFrame:
    """Per level of service, model and of the largest groups: requests, share, mean rate over the
    trace span, and the mean and CV of the gaps between that level's own consecutive arrivals."""
    levels = pl.concat([gaps.service_gaps.with_columns(pl.lit("service").alias("dimension")),
                        gaps.model_gaps.with_columns(pl.lit("model").alias("dimension")),
                        gaps.group_gaps.filter(pl.col("level").is_in(top_groups))
                        .with_columns(pl.lit("group").alias("dimension"))])
    return levels.filter(pl.col("requests") > 0).select(
        "dimension", "level", "requests", (pl.col("requests") / ctx.rows).alias("share"),
        (pl.col("requests") / ctx.span_s).alias("rate_rps"), "iat_mean_s", "iat_cv",
    ).sort(["dimension", "requests", "level"], descending=[False, True, False])


def arrivals(con, ctx: Context, window_rates: pl.DataFrame, gaps: GapResults) -> tuple[Finding | Absent, dict]:
    if ctx.rows < 3:
        return Absent("arrivals", f"{ctx.rows} request(s): too few for inter-arrival statistics"), {}
    if ctx.span_s <= 0:
        return Absent("arrivals", "all arrivals at the same instant (zero span)"), {}
    summary = gaps.summary
    idc = sql.table(con, "idc", order_by="scale_s")
    top_groups = con.sql("select group_key from stg_top_groups").pl()["group_key"].to_list()
    by_group = arrivals_by_group(gaps, ctx, top_groups)
    best, fits, sample = overall_fit(gaps.iat_sample, ctx.resolution_s, ctx.settings.stages)
    per_window = window_fits(gaps.window_sample, ctx.settings.stages)
    tables = {"window_rates": window_rates, "idc": idc, "window_iat_fits": per_window, "arrivals_by_group": by_group}
    derounded = ctx.jitter_s > 0
    if best is None:
        best_fit = absent(f"fewer than {ctx.settings.stages.min_fit_gaps} positive gaps between arrivals")
    else:
        best_fit = {**best, "sample": int(len(gaps.iat_sample))}
        tables["iat_hist"] = iat_hist(sample, fits, ctx.settings.stages.iat_bins_per_decade)
        tables["iat_fit"] = iat_fit_curves(tables["iat_hist"], fits)
    cvs = window_rates.filter(pl.col("gaps") >= ctx.settings.stages.min_window_gaps)["iat_cv_derounded" if derounded else "iat_cv"]
    family_share = ({k: v / per_window.height for k, v in
                     per_window["best_family"].value_counts().rows()} if per_window.height else {})
    rate = ctx.rows / ctx.span_s
    values = {
        "rate_rps": rate,
        "iat_mean_s": summary["iat_mean_s"],
        "iat_cv": summary["iat_cv"],
        "iat_cv_derounded": summary["iat_cv_derounded"] if derounded else absent("timestamps not rounded"),
        "idc": {_scale_key(r["scale_s"]): r["idc"] for r in idc.iter_rows(named=True)},
        "best_fit": best_fit,
        "fits": {f: families.row_fit(fits, f) for f in fits} if fits else absent("no fit"),
        "peak_to_mean": peak_to_mean(window_rates),
        "window_s": ctx.settings.window_s,
        "windows": {
            "count": window_rates.height,
            "fitted": per_window.height,
            "iat_cv_median": float(cvs.median()) if cvs.len() else None,
            "share_cv_above_1": float((cvs > 1).mean()) if cvs.len() else None,
            "family_share": dict(sorted(family_share.items())),
            "statistic": "de-rounded within-window gaps" if derounded else "within-window gaps",
        },
        "by_service": _levels(by_group, "service"),
        "by_model": _levels(by_group, "model"),
    }
    return Finding("arrivals", values, _statement(values, best, derounded), list(tables)), tables


def _scale_key(scale: float) -> str:
    return str(int(scale)) if float(scale).is_integer() else str(scale)


def _levels(by_group: pl.DataFrame, dimension: str) -> dict:
    rows = by_group.filter(pl.col("dimension") == dimension)
    return {r["level"]: {"requests": r["requests"], "rate_rps": r["rate_rps"], "iat_cv": r["iat_cv"]}
            for r in rows.iter_rows(named=True)}


def _statement(v: dict, best: dict | None, derounded: bool) -> str:
    cv = v["iat_cv_derounded"] if derounded else v["iat_cv"]
    kind = "burstier than Poisson" if (cv or 0) > 1.05 else "smoother than Poisson" if (cv or 0) < 0.95 else "close to Poisson"
    which = "de-rounded " if derounded else ""
    fit = ("" if not best else
           f"; the gaps' family cannot be tested ({best['family']} by BIC): {best['ks']['absent']}"
           if isinstance(best["ks"], dict)
           else f"; {best['family'].capitalize()} fits best (KS {fmt(best['ks'], 2)})" if best["fits"]
           else f"; no family fits the gaps (closest {best['family']}, KS {fmt(best['ks'], 2)} > {fmt(best['ks_max'], 2)})")
    idc = v["idc"]
    scales = ", ".join(f"{fmt(x)} at {k} s" for k, x in idc.items() if x is not None)
    return (f"Arrivals are {kind}: {fmt(v['rate_rps'])} req/s, {which}inter-arrival CV {fmt(cv)}{fit}; "
            f"index of dispersion {scales}; peak-to-mean {fmt(v['peak_to_mean'])} over {v['window_s']} s windows.")
