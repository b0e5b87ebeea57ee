"""Reasoning (when reason tokens are present): a two-component Gaussian mixture on log reasoning
length, its modes, weights and bimodality evidence, and the reason-ratio distribution."""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from servetrace.findings import Absent, Finding
from servetrace.stages import sql
from servetrace.stages.context import Context, fmt, pct

MIN_ROWS = 50
LOG_BINS = 40


def gaussian_mixture_2(y: np.ndarray, iterations: int = 200, tol: float = 1e-9) -> dict:
    """EM for a two-component 1-D Gaussian mixture, started at the quartiles; components sorted by mean."""
    w = np.array([0.5, 0.5])
    mu = np.quantile(y, [0.25, 0.75]).astype(float)
    sd = np.full(2, max(float(y.std()) / 2, 1e-3))
    prev = -np.inf
    for _ in range(iterations):
        dens = w * np.exp(-0.5 * ((y[:, None] - mu) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))
        total = dens.sum(axis=1, keepdims=True)
        loglik = float(np.log(np.maximum(total, 1e-300)).sum())
        r = dens / np.maximum(total, 1e-300)
        nk = r.sum(axis=0)
        w = nk / len(y)
        mu = (r * y[:, None]).sum(axis=0) / np.maximum(nk, 1e-12)
        sd = np.sqrt((r * (y[:, None] - mu) ** 2).sum(axis=0) / np.maximum(nk, 1e-12))
        sd = np.maximum(sd, 1e-3)
        if abs(loglik - prev) < tol * abs(loglik):
            break
        prev = loglik
    order = np.argsort(mu)
    return {"weights": w[order], "means": mu[order], "sds": sd[order], "loglik": loglik}


def bimodality(y: np.ndarray, mix: dict) -> dict:
    """Evidence for two modes: BIC of one vs two Gaussians, Ashman's D, and the bimodality coefficient."""
    n = len(y)
    sd1 = float(y.std()) or 1e-3
    loglik1 = float(-n * math.log(sd1 * math.sqrt(2 * math.pi)) - n / 2)
    bic1 = 2 * math.log(n) - 2 * loglik1
    bic2 = 5 * math.log(n) - 2 * mix["loglik"]
    m, s = mix["means"], mix["sds"]
    ashman = float(math.sqrt(2) * abs(m[1] - m[0]) / math.sqrt(s[0] ** 2 + s[1] ** 2))
    from scipy import stats

    g = float(stats.skew(y))
    k = float(stats.kurtosis(y))  # excess
    bc = (g**2 + 1) / (k + 3 * (n - 1) ** 2 / ((n - 2) * (n - 3))) if n > 3 else None
    bimodal = bool(bic1 - bic2 > 10 and ashman > 2 and min(mix["weights"]) >= 0.05)
    return {"delta_bic": bic1 - bic2, "ashman_d": ashman, "bimodality_coefficient": bc, "bimodal": bimodal}


def mixture_table(y: np.ndarray, mix: dict) -> pl.DataFrame:
    """Histogram of log reasoning length with each component's expected share per bin."""
    from scipy import special

    edges = np.linspace(y.min(), y.max() + 1e-9, LOG_BINS + 1)
    counts, _ = np.histogram(y, edges)
    cols = {"reason_lo": np.exp(edges[:-1]), "reason_hi": np.exp(edges[1:]), "requests": counts,
            "share": counts / counts.sum()}
    for i in range(2):
        cdf = special.ndtr((edges - mix["means"][i]) / mix["sds"][i])
        cols[f"component_{i + 1}_share"] = mix["weights"][i] * np.diff(cdf)
    return pl.DataFrame(cols)


def reasoning(con, ctx: Context) -> tuple[Finding | Absent, dict]:
    if not ctx.has("reason_tokens"):
        return Absent("reasoning", "no reasoning tokens in the trace"), {}
    sample = sql.table(con, "stg_reason_sample")
    ratio = sql.table(con, "reason_ratio", order_by="bin_idx")
    if sample.height < MIN_ROWS:
        return Absent("reasoning", f"fewer than {MIN_ROWS} sampled rows with reasoning tokens"), {"reason_ratio": ratio}
    y = np.log(sample["reason_tokens"].to_numpy())
    mix = gaussian_mixture_2(y)
    evidence = bimodality(y, mix)
    out = sample["output_tokens"].to_numpy()
    ratios = np.minimum(sample["reason_tokens"].to_numpy()[out > 0] / out[out > 0], 1.0)
    modes = [{"weight": float(mix["weights"][i]), "median_tokens": float(np.exp(mix["means"][i])),
              "log_mean": float(mix["means"][i]), "log_sd": float(mix["sds"][i])} for i in range(2)]
    peaks = ratio.sort(["share", "bin_idx"], descending=[True, False]).head(2)
    values = {
        "rows": int(ctx.profile["reason_tokens_rows"]),
        "sample": int(sample.height),
        "modes": modes,
        **evidence,
        "reason_ratio_mean": float(ratios.mean()) if len(ratios) else None,
        "reason_ratio_peaks": [(r["ratio_lo"] + r["ratio_hi"]) / 2 for r in peaks.iter_rows(named=True)],
    }
    shape = "bimodal" if evidence["bimodal"] else "not clearly bimodal"
    statement = (f"Reasoning length is {shape}: modes near {fmt(modes[0]['median_tokens'])} and "
                 f"{fmt(modes[1]['median_tokens'])} tokens (weights {pct(modes[0]['weight'])} / {pct(modes[1]['weight'])}, "
                 f"Ashman's D {fmt(evidence['ashman_d'], 2)}); mean reason ratio {fmt(values['reason_ratio_mean'], 2)}.")
    tables = {"reasoning_mixture": mixture_table(y, mix), "reason_ratio": ratio}
    return Finding("reasoning", values, statement, list(tables)), tables
