"""Reasoning (when reason tokens are present): a two-component Gaussian mixture on log reasoning
length, its modes, weights and bimodality evidence, and the reason-ratio distribution: its peaks
and the same bimodality evidence on the ratio."""

from __future__ import annotations

import numpy as np
import polars as pl

from servetrace.findings import Absent, Finding
from servetrace.stages import sql
from servetrace.stages.context import Context, fmt, pct
from servetrace.settings import DEFAULTS
from servetrace.stats.modes import bimodality, gaussian_mixture_2, histogram_peaks


def mixture_table(y: np.ndarray, mix: dict, bins: int = DEFAULTS.stages.reason_log_bins) -> pl.DataFrame:
    """Histogram of log reasoning length with each component's expected share per bin."""
    from scipy import special

    edges = np.linspace(y.min(), y.max() + 1e-9, bins + 1)
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
    t = ctx.settings.stages
    sql.sample_rows(con, ctx.rows, ctx.sample_p)
    sample = sql.table(con, "stg_reason_sample")
    ratio = sql.table(con, "reason_ratio", order_by="bin_idx")
    if sample.height < t.min_reason_rows:
        return Absent("reasoning", f"fewer than {t.min_reason_rows} sampled rows with reasoning tokens"), {"reason_ratio": ratio}
    y = np.log(sample["reason_tokens"].to_numpy())
    mix = gaussian_mixture_2(y)
    evidence = bimodality(y, mix, t)
    out = sample["output_tokens"].to_numpy()
    ratios = np.minimum(sample["reason_tokens"].to_numpy()[out > 0] / out[out > 0], 1.0)
    modes = [{"weight": float(mix["weights"][i]), "median_tokens": float(np.exp(mix["means"][i])),
              "log_mean": float(mix["means"][i]), "log_sd": float(mix["sds"][i])} for i in range(2)]
    peaks = histogram_peaks(ratio["share"].to_numpy(), ((ratio["ratio_lo"] + ratio["ratio_hi"]) / 2).to_numpy(),
                             t.peak_prominence)
    ratio_mix = gaussian_mixture_2(ratios) if len(ratios) >= t.min_reason_rows else None
    values = {
        "rows": int(ctx.profile["reason_tokens_rows"]),
        "sample": int(sample.height),
        "modes": modes,
        **evidence,
        "reason_ratio_mean": float(ratios.mean()) if len(ratios) else None,
        "reason_ratio_peaks": [p["at"] for p in peaks],
        "reason_ratio_peak_rule": (f"scipy.signal.find_peaks on the 0.02-wide ratio bins (all rows), prominence >= "
                                   f"{t.peak_prominence:g} x the highest bin's share"),
        "reason_ratio_bimodality": ({**bimodality(ratios, ratio_mix, t), "means": ratio_mix["means"].tolist(),
                                     "weights": ratio_mix["weights"].tolist()} if ratio_mix else None),
    }
    shape = "bimodal" if evidence["bimodal"] else "not clearly bimodal"
    rb = values["reason_ratio_bimodality"]
    ratio_shape = "" if rb is None else "bimodal, " if rb["bimodal"] else "not clearly bimodal, "
    statement = (f"Reasoning length is {shape}: modes near {fmt(modes[0]['median_tokens'])} and "
                 f"{fmt(modes[1]['median_tokens'])} tokens (weights {pct(modes[0]['weight'])} / {pct(modes[1]['weight'])}, "
                 f"Ashman's D {fmt(evidence['ashman_d'], 2)}); the reason ratio is {ratio_shape}"
                 f"{'peaks near ' + ' and '.join(fmt(p, 2) for p in sorted(values['reason_ratio_peaks'])) + ', ' if peaks else ''}"
                 f"mean {fmt(values['reason_ratio_mean'], 2)}.")
    tables = {"reasoning_mixture": mixture_table(y, mix, t.reason_log_bins), "reason_ratio": ratio}
    return Finding("reasoning", values, statement, list(tables)), tables
