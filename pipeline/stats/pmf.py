"""Empirical PMFs of length fields: binning (so bundles stay small), pooling, and family fits."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import scipy  # scipy.special loads on first use (scipy's lazy submodules)

from servetrace.stats import families
from servetrace.stats.families import weibull_shape_for_cv

REASON_BINS = 500  # ServeGen maps reason_ratio bin i to i / 500


def bin_index(values: np.ndarray | pl.Expr, binning: dict):
    """Bin id of each token count: the count itself below `exact_below`, else a log-spaced bin
    id offset past it. Works on numpy arrays and on Polars expressions alike."""
    t, step = binning["exact_below"], binning["log_step"]
    if step <= 0:
        return values
    if isinstance(values, pl.Expr):
        above = (values.cast(pl.Float64).clip(lower_bound=t) / t).log() / math.log1p(step)
        return pl.when(values < t).then(values.cast(pl.Float64)).otherwise(t + above.floor())
    v = np.asarray(values, dtype=float)
    above = np.floor(np.log(np.maximum(v, t) / t) / math.log1p(step))
    return np.where(v < t, v, t + above)


def binned_pmf(values: np.ndarray, probs: np.ndarray, binning: dict) -> tuple[np.ndarray, np.ndarray]:
    """Merge a token-count PMF into bins; each bin's value is its probability-weighted mean count,
    rounded (a weighted mean of integers of one bin stays inside it, so bins stay distinct)."""
    values = np.asarray(values, dtype=float)
    probs = np.asarray(probs, dtype=float)
    keep = probs > 0
    values, probs = values[keep], probs[keep]
    order = np.argsort(values, kind="stable")
    values, probs = values[order], probs[order]
    bins = bin_index(values, binning)
    starts = np.flatnonzero(np.r_[True, np.diff(bins) != 0])
    mass = np.add.reduceat(probs, starts)
    rep = np.rint(np.add.reduceat(probs * values, starts) / mass)
    return rep, mass / mass.sum()


def reason_ratio_bins(ratio: pl.Expr) -> pl.Expr:
    """A reasoning/output ratio snapped to ServeGen's grid of multiples of 1/500."""
    return (ratio.clip(0.0, 1.0) * REASON_BINS).round() / REASON_BINS


def grouped_pmfs(frame: pl.DataFrame, keys: list[str], value: str, binning: dict | None,
                 weight: str | None = None) -> pl.DataFrame:
    """One PMF per group of `keys`: columns keys + `values` (list) + `probs` (list), vectorized.
    `weight`: a column of row counts (the frame holds distinct values and how often each occurs)."""
    v = pl.col(value)
    w = pl.col(weight) if weight else pl.lit(1, dtype=pl.Int64)
    binned = frame.filter(v.is_not_null()).with_columns(
        (bin_index(v, binning) if binning else v.cast(pl.Float64)).alias("_bin")
    )
    per_bin = (
        binned.group_by([*keys, "_bin"])
        .agg((v * w).sum().truediv(w.sum()).alias("_rep") if binning else v.first().alias("_rep"),
             w.sum().alias("_n"))
        .with_columns((pl.col("_rep").round().cast(pl.Int64) if binning else pl.col("_rep")).alias("_rep"))
        .group_by([*keys, "_rep"]).agg(pl.col("_n").sum())
        .with_columns((pl.col("_n") / pl.col("_n").sum().over(keys)).alias("_p"))
        .sort([*keys, "_rep"])
    )
    return per_bin.group_by(keys, maintain_order=True).agg(
        pl.col("_rep").alias("values"), pl.col("_p").alias("probs")
    )


# ---------------------------------------------------------------- family fits

def _cdf(family: str, params: dict, x: np.ndarray) -> np.ndarray:
    """The family's CDF at x >= 0 (scipy.special expressions, through stats.families; no scipy.stats import)."""
    p = {"scale": params["mean"]} if family == "exponential" else params
    return families.iat_cdf(family, p, np.asarray(x, dtype=float)[None, :])[0]


def pmf_fit(values: np.ndarray, probs: np.ndarray, continuous: bool = False) -> dict:
    """Best of exponential / lognormal / gamma / weibull for a PMF, each moment-matched (lognormal on
    log moments), judged by the Kolmogorov-Smirnov distance to the PMF (continuity-corrected for counts)."""
    values = np.asarray(values, dtype=float)
    probs = np.asarray(probs, dtype=float)
    if values.size == 0:
        return {"family": "empirical", "params": {}, "ks": None, "mean": None, "cv": None}
    mean = float(np.dot(values, probs))
    var = float(np.dot((values - mean) ** 2, probs))
    cv = math.sqrt(var) / mean if mean > 0 else None
    if values.size == 1 or not var > 0 or mean <= 0:
        return {"family": "constant", "params": {"value": mean}, "ks": 0.0, "mean": mean, "cv": cv}
    logs = np.log(np.maximum(values, 0.5))
    mu = float(np.dot(logs, probs))
    sigma = math.sqrt(max(float(np.dot((logs - mu) ** 2, probs)), 1e-12))
    k = float(weibull_shape_for_cv(cv))
    candidates = {
        "exponential": {"mean": mean},
        "lognormal": {"mu": mu, "sigma": sigma},
        "gamma": {"shape": mean**2 / var, "scale": var / mean},
        "weibull": {"shape": k, "scale": mean / math.exp(scipy.special.gammaln(1 + 1 / k))},
    }
    ecdf = np.cumsum(probs)
    before = ecdf - probs
    half = 0.0 if continuous else 0.5
    best = None
    for family, params in candidates.items():
        hi = _cdf(family, params, values + half)
        lo = _cdf(family, params, np.maximum(values - half, 0.0))
        ks = float(max(np.max(np.abs(ecdf - hi)), np.max(np.abs(before - lo))))
        if best is None or ks < best["ks"]:
            best = {"family": family, "params": params, "ks": min(ks, 1.0), "mean": mean, "cv": cv}
    return best


def pooled_pmf(pmfs: list[dict], weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mixture of PMFs with the given weights (e.g. requests per dataset window)."""
    if not pmfs:
        return np.zeros(0), np.zeros(0)
    values = np.concatenate([np.asarray(p["values"], dtype=float) for p in pmfs])
    probs = np.concatenate([np.asarray(p["probs"], dtype=float) * w for p, w in zip(pmfs, weights)])
    uniq, inverse = np.unique(values, return_inverse=True)
    mass = np.bincount(inverse, weights=probs, minlength=uniq.size)
    total = mass.sum()
    return (uniq, mass / total) if total > 0 else (uniq, np.full(uniq.size, 1.0 / uniq.size))
