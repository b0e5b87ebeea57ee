"""A characterized trace directory built by hand (findings.json + tables/), shaped like the stages' output.

The numbers are planted, not computed: the report must show exactly them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from servetrace.io import write_json, write_parquet
from servetrace.stages.clients import lorenz
from servetrace.stages.failures import failure_runs

EVIL = "</script><script>alert(1)</script>"


def findings_doc(source: str = "burst<y>.csv", model: str = EVIL) -> dict:
    return {
        "schema": "servetrace.findings/v1",
        "generated_at": "2025-01-01T00:00:00Z",
        "trace": {"source": source, "format": "burstgpt", "sha256": "ab" * 32, "rows_read": 10_250,
                  "rows_kept": 10_000, "rows_rejected": 250, "span_s": 172_800.0,
                  "reject_reasons": {"negative tokens": 200, f"model {model}": 50},
                  "statement": f"10,000 of 10,250 rows kept; 250 rejected (model {model})."},
        "settings": {"window_s": 600, "idc_scales_s": [1, 10, 60, 600], "seed": 0},
        "versions": {"servetrace": "0.1.0", "duckdb": "1.1.0"},
        "arrivals": {"rate_rps": 0.0578704, "iat_cv": 2.345, "peak_to_mean": 3.21,
                     "idc": {"1": 1.4, "10": 3.9, "60": 12.5, "600": 48.0},
                     "best_fit": {"family": "gamma", "params": {"shape": 0.18, "scale": 95.0}, "ks": 0.0213},
                     "statement": "Inter-arrival CV 2.35: burstier than Poisson; gamma fits best."},
        "clients": {"group_by": "model", "count": 40, "top_share": {"1": 0.31, "5": 0.72, "10": 0.9},
                    "gini": 0.71, "statement": f"The top client ({model}) sends 31 % of the requests."},
        "lengths": {"input": {"mean": 612.5, "p50": 310.0, "p90": 1500.0, "p99": 4020.0,
                              "best_fit": {"family": "lognormal", "ks": 0.03}},
                    "output": {"mean": 250.25, "p50": 180.0, "p90": 600.0, "p99": 1500.0,
                               "best_fit": {"family": "exponential", "ks": 0.05}},
                    "correlation": {"pearson": 0.12, "spearman": 0.34, "kendall": 0.23},
                    "statement": "Input and output lengths are weakly correlated (Spearman 0.34)."},
        "failures": {"rate": 0.0183, "statement": "1.83 % of requests failed."},
        "diurnal": {"peak_hour": 14, "peak_to_trough": 4.2, "statement": "Peak at 14 h."},
        "sessions": {"count": 800, "turns_mean": 3.1, "statement": "800 sessions, 3.1 turns on average."},
        "reasoning": {"absent": "no reason_tokens column"},
        "multimodal": {"absent": "no image_count column"},
        "prefix": {"absent": "no hash_ids column"},
    }


def tables(model: str = EVIL, seed: int = 0) -> dict[str, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    windows = 288
    starts = np.arange(windows) * 600.0
    rate = 0.0578704 * (1 + 0.8 * np.sin(starts / 86400 * 2 * np.pi)) * rng.gamma(4, 0.25, windows)
    requests = np.round(rate * 600).astype(np.int64)
    failed = np.minimum(requests, rng.poisson(requests * 0.018))
    hours = np.arange(24)
    bins = np.arange(0, 80)
    lo = 10 ** (bins / 20)
    in_cdf = 1 - np.exp(-lo / 600)
    out_cdf = 1 - np.exp(-lo / 250)
    groups = [f"model-{i}" for i in range(39)] + [model]
    counts = np.sort(rng.pareto(1.2, 40) * 100 + 1)[::-1].round().astype(np.int64)
    windows_frame = pl.DataFrame({
        "window_idx": np.arange(windows), "window_start_s": starts, "requests": requests, "rate_rps": rate,
        "iat_cv": rng.gamma(9, 0.25, windows), "iat_cv_derounded": rng.gamma(8, 0.25, windows),
        "failed": failed, "failure_rate": failed / np.maximum(requests, 1)}).with_columns(
        pl.when(pl.col("requests") > 0).then(pl.col("failure_rate")).alias("failure_rate"))
    return {
        "rate_series": windows_frame.select(pl.col("window_start_s").alias("bin_start_s"), "rate_rps"),
        "failure_runs": failure_runs(windows_frame, 600.0, 120),
        "window_rates": windows_frame,
        "hourly_profile": pl.DataFrame({"hour": hours, "rate_rps": 0.05 * (1 + 0.6 * np.sin((hours - 8) / 24 * 2 * np.pi)),
                                        "relative_rate": 1 + 0.6 * np.sin((hours - 8) / 24 * 2 * np.pi)}),
        "idc": pl.DataFrame({"scale_s": [1.0, 10.0, 60.0, 600.0], "idc": [1.4, 3.9, 12.5, 48.0]}),
        "group_counts": pl.DataFrame({"group_key": groups, "requests": counts}),
        "lorenz": lorenz(counts),
        "clients": pl.DataFrame({"rank": np.arange(1, 41), "group_key": groups, "requests": counts,
                                 "share": counts / counts.sum(), "rate_rps": counts / 172_800.0,
                                 "iat_cv": rng.gamma(6, 0.3, 40)}),
        "length_hist": pl.concat([
            pl.DataFrame({"field": f, "bin_idx": bins, "bin_lo": lo, "bin_hi": 10 ** ((bins + 1) / 20),
                          "requests": np.diff(np.r_[0, c]) * 10_000, "cdf": c})
            for f, c in (("input", in_cdf), ("output", out_cdf))]),
        "length_joint": pl.DataFrame({"input_lo": np.repeat(10 ** (np.arange(10, 35) / 10), 20),
                                      "input_hi": np.repeat(10 ** (np.arange(11, 36) / 10), 20),
                                      "output_lo": np.tile(10 ** (np.arange(5, 25) / 10), 25),
                                      "output_hi": np.tile(10 ** (np.arange(6, 26) / 10), 25),
                                      "requests": rng.poisson(20, 500)}),
        "conditional_output": pl.DataFrame({"bucket": np.arange(2, 12), "input_lo": 2.0 ** np.arange(2, 12),
                                            "output_p10": 20 + 5.0 * np.arange(10), "output_p50": 120 + 20.0 * np.arange(10),
                                            "output_p90": 500 + 40.0 * np.arange(10)}),
        "failures_by_group": pl.DataFrame({"dimension": ["model", "model", "service"], "level": ["ChatGPT", model, "api"],
                                           "requests": [6000, 4000, 3000], "failed": [100, 83, 90],
                                           "failure_rate": [100 / 6000, 83 / 4000, 0.03]}),
        "sessions": pl.DataFrame({"turns": np.arange(1, 11), "sessions": (800 * 0.5 ** np.arange(1, 11)).round() + 1}),
        "timestamp_grid": pl.DataFrame({"grid_s": [0.001, 0.01, 0.1, 1.0, 3.0], "share_on_grid": [1.0, 1.0, 1.0, 1.0, 0.35]}),
    }


def write_trace_dir(out: Path, findings: dict | None = None, tables_: dict | None = None) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "findings.json", findings or findings_doc())
    for name, df in (tables() if tables_ is None else tables_).items():
        write_parquet(out / "tables" / f"{name}.parquet", df.to_arrow())
    return out


def reasoning_parts() -> tuple[dict, dict[str, pl.DataFrame]]:
    """A planted two-mode reasoning finding (weights 40 / 60 %, medians 300 and 3,000 tokens) and its tables."""
    from scipy import stats

    modes = [{"weight": 0.4, "median_tokens": 300.0, "log_mean": np.log(300.0), "log_sd": 0.5},
             {"weight": 0.6, "median_tokens": 3000.0, "log_mean": np.log(3000.0), "log_sd": 0.4}]
    edges = np.linspace(np.log(20), np.log(40_000), 41)
    parts = {f"component_{i + 1}_share": m["weight"] * np.diff(stats.norm.cdf(edges, m["log_mean"], m["log_sd"]))
             for i, m in enumerate(modes)}
    total = parts["component_1_share"] + parts["component_2_share"]
    mixture = pl.DataFrame({"reason_lo": np.exp(edges[:-1]), "reason_hi": np.exp(edges[1:]),
                            "requests": np.round(total * 50_000).astype(np.int64), "share": total, **parts})
    lo = np.arange(50) / 50
    ratio_share = np.exp(-((lo - 0.35) / 0.05) ** 2) + 1.5 * np.exp(-((lo - 0.95) / 0.04) ** 2)
    ratio = pl.DataFrame({"bin_idx": np.arange(50), "ratio_lo": lo, "ratio_hi": lo + 0.02,
                          "share": ratio_share / ratio_share.sum()})
    finding = {"rows": 50_000, "modes": modes, "ashman_d": 4.6, "bimodal": True, "reason_ratio_mean": 0.71,
               "reason_ratio_peaks": [0.95, 0.35],
               "statement": "Reasoning length is bimodal: modes near 300 and 3,000 tokens (weights 40 % / 60 %)."}
    return finding, {"reasoning_mixture": mixture, "reason_ratio": ratio}


def iat_parts() -> tuple[dict, dict[str, pl.DataFrame]]:
    """Planted inter-arrival fits (gamma best, KS 0.0213) with the histogram and fitted curves."""
    from scipy import stats

    x = np.logspace(-2, 3, 40)
    families = {"exponential": (stats.expon(scale=17.3), 0.081), "gamma": (stats.gamma(0.18, scale=95.0), 0.0213),
                "weibull": (stats.weibull_min(0.4, scale=8.0), 0.0335)}
    fits = {name: {"family": name, "ks": ks} for name, (_, ks) in families.items()}
    hist = pl.DataFrame({"iat_s": x, "density": families["gamma"][0].pdf(x) * 1.1})
    curves = pl.concat([pl.DataFrame({"family": name, "iat_s": x, "density": dist.pdf(x)})
                        for name, (dist, _) in families.items()])
    return fits, {"iat_hist": hist, "iat_fit": curves}
