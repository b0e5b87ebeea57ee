"""Which arrival model a bundle generates with, chosen by evidence on its own source.

Candidates: `renewal` (each client a per-window renewal process, ServeGen's model), `cox` (every
client Poisson in a time modulated at several scales, bundle/modulation.py) and `cox-renewal`
(the windows' renewal processes in the modulated time). Each is generated from the bundle over
the source's span (its first MAX_ROWS rows for a larger source, seeds SEEDS) and compared with
the source: the index of dispersion of counts at SCALES_S (whole bins; relative error, averaged
over seeds and over the scales with at least MIN_BINS bins; the seed-to-seed difference is kept
beside it as the noise floor) and the Kolmogorov-Smirnov distance of the inter-arrival times. The
lowest sum wins; every candidate's figures stay in `bundle.arrival_model.candidates`."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import polars as pl

from servetrace.bundle.modulation import BIN_S, fit_modulation
from servetrace.stats import fidelity as metrics

CANDIDATES = ("renewal", "cox", "cox-renewal")
SCALES_S = (1.0, 10.0, 60.0, 600.0)
SEEDS = (101, 102)
MAX_ROWS = 1_000_000
MIN_BINS = 30
MAX_MODULATION_WINDOWS = 4096  # windows of BIN_S counts the modulation fit reads (~80 MB)


def covered_counts(bin_index: np.ndarray, counts: np.ndarray, bundle: dict) -> np.ndarray:
    """Counts per BIN_S bin (`bin_index` counted from the first window start) of the windows the
    source covers fully and that hold requests (the modulation fit reads no empty window), laid end
    to end; at most MAX_MODULATION_WINDOWS of them, evenly spread: memory follows the requests, not
    the span."""
    window_s = float(bundle["window_s"])
    grid = np.asarray(bundle["aggregate"]["window_start_s"], dtype=float)
    cov = bundle.get("covered") or {"start_s": grid[0], "end_s": grid[-1] + window_s}
    per = int(round(window_s / BIN_S))
    full = (grid >= cov["start_s"]) & (grid + window_s <= cov["end_s"])
    window = bin_index // per
    inside = (window < len(grid)) & (counts > 0)
    inside[inside] = full[window[inside]]
    busy = np.unique(window[inside])
    if len(busy) > MAX_MODULATION_WINDOWS:
        busy = np.unique(busy[np.linspace(0, len(busy) - 1, MAX_MODULATION_WINDOWS).round().astype(np.int64)])
    take = inside & np.isin(window, busy)
    slot = np.searchsorted(busy, window[take])
    return np.bincount(slot * per + bin_index[take] % per, weights=counts[take], minlength=len(busy) * per)


def score(source: np.ndarray, synthetic: np.ndarray) -> dict:
    """IDC relative error per scale, inter-arrival KS distance and CV of a synthetic trace."""
    errs = {}
    for s in SCALES_S:
        a, b = metrics.idc(source, s), metrics.idc(synthetic, s)
        errs[str(int(s))] = None if a is None or b is None or a <= 0 else abs(b - a) / a
    ks = metrics.ks_distance(np.diff(np.sort(source)), np.diff(np.sort(synthetic)))
    return {"idc_error": errs, "iat_ks": ks, "iat_cv": metrics.iat_cv(synthetic)}


def _mean(values: list) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def choose(arrival_s: np.ndarray, counts: np.ndarray, bundle: dict) -> dict:
    """The `arrival_model` entry: the fitted modulation, each candidate's evidence, the winner."""
    from servetrace.generation import GenerateOptions, generate_table

    arrival_s = np.sort(np.asarray(arrival_s, dtype=float))
    whole_seconds = bool(np.all(arrival_s == np.round(arrival_s)))  # BurstGPT's timestamps: 1 s resolution
    modulation = fit_modulation(counts, BIN_S, float(bundle["window_s"]), 1.0 if whole_seconds else 0.0) \
        if len(counts) else None
    sample = arrival_s[:MAX_ROWS]
    start, end = float(sample[0]), float(sample[-1])
    options = [GenerateOptions(seed=s, start_s=start, duration_s=max(end - start, 1e-9)) for s in SEEDS]
    source_idc = {str(int(s)): metrics.idc(sample, s) for s in SCALES_S}
    # a scale scores only with MIN_BINS whole bins: an IDC of a dozen bins is mostly noise
    scored = [str(int(s)) for s in SCALES_S if (end - start) / s >= MIN_BINS] or [str(int(SCALES_S[0]))]
    evidence = {}
    for name in CANDIDATES:
        if name != "renewal" and modulation is None:
            continue
        trial = copy.copy(bundle)
        trial["arrival_model"] = {"chosen": name, "modulation": modulation, "candidates": {}}
        traces = [generate_table(trial, o)[0]["arrival_s"].to_numpy() for o in options]
        runs = [score(sample, t) for t in traces]
        per_scale = {k: _mean([r["idc_error"][k] for r in runs]) for k in runs[0]["idc_error"]}
        # seed to seed: the same metric between the candidate's own two traces (its noise floor)
        floor = score(traces[0], traces[1])["idc_error"]
        idc_err = _mean([per_scale[k] for k in scored])
        ks = _mean([r["iat_ks"] for r in runs])
        evidence[name] = {"idc_error": per_scale, "idc_seed_floor": floor, "idc_error_mean": idc_err,
                          "iat_ks": ks, "iat_cv": _mean([r["iat_cv"] for r in runs]),
                          "score": (idc_err or 0.0) + (ks or 0.0)}
    best = min(evidence, key=lambda n: evidence[n]["score"])
    return {"chosen": best, "modulation": modulation, "candidates": evidence,
            "scales_s": list(SCALES_S), "scored_scales_s": [float(k) for k in scored],
            "source": {"idc": source_idc, "iat_cv": metrics.iat_cv(sample), "requests": int(len(sample))},
            "note": f"source IDC {source_idc}, IAT CV {metrics.iat_cv(sample)}; score = mean IDC relative "
                    f"error over the scales + inter-arrival KS, mean of seeds {list(SEEDS)}, over the "
                    f"source's first {len(sample):,} requests"}


def with_arrival_model(bundle: dict, requests: str | Path | pl.LazyFrame) -> dict:
    """The bundle with its `arrival_model`, from a requests Parquet file sorted by arrival (as
    ingest writes it) or a frame: counts per BIN_S bin over the whole trace (one aggregation) and
    the first MAX_ROWS arrival times (a file's first rows: nothing more is read into memory)."""
    if isinstance(requests, pl.LazyFrame):
        scan = requests.select("arrival_s")
        head = scan.sort("arrival_s").head(MAX_ROWS).collect()["arrival_s"].to_numpy()
    else:
        scan = pl.scan_parquet(requests).select("arrival_s")
        head = scan.head(MAX_ROWS).collect()["arrival_s"].to_numpy()
    if len(head) < 3:
        return bundle
    g0 = float(bundle["aggregate"]["window_start_s"][0])
    bins = (scan.select(((pl.col("arrival_s") - g0) / BIN_S).floor().cast(pl.Int64).alias("b"))
            .group_by("b").len().collect())
    b, n = bins["b"].to_numpy(), bins["len"].to_numpy()
    ok = b >= 0
    return {**bundle, "arrival_model": choose(head, covered_counts(b[ok], n[ok], bundle), bundle)}
