"""The default trace: a seeded BurstGPT-v1-schema sample generated from fitted parameters.

    python -m servetrace.sample --out data/samples/burstgpt_sample.csv [--seed N] [--params FILE]

The parameters (pipeline/sample_params.json) were fitted on real public traces by
tools/fit_sample_params.py; each group there says where it came from. Arrivals: per 600 s
window, a Poisson count around a rate that follows a diurnal profile (conversation: two
working-hour peaks, weekend dip; API: flatter hour profile with daily drift and AR(1)
irregularity), placed by Gamma inter-arrivals with a per-window CV and rescaled to fill the
window. Everything is vectorized numpy and the same seed gives the same bytes.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import polars as pl
from scipy.signal import lfilter

from servetrace.errors import ServetraceError
from servetrace.io import atomic_path, read_json

PARAMS_PATH = Path(__file__).with_name("sample_params.json")
COLUMNS = ["Timestamp", "Model", "Request tokens", "Response tokens", "Total tokens", "Log Type"]
SERVICES = ("Conversation log", "API log")
DAY_S = 86400


def load_params(path: str | Path = PARAMS_PATH) -> dict:
    params = read_json(path)
    if params.get("schema") != "servetrace.sample_params/1":
        raise ServetraceError(f"{path}: not a servetrace.sample_params/1 file")
    return params


def _window_hours(starts: np.ndarray, window_s: int) -> np.ndarray:
    return ((starts + window_s / 2) % DAY_S) / 3600.0


def _ramp(starts: np.ndarray, trace: dict) -> np.ndarray:
    """Linear ramp-up head: from `ramp_start` of the rate to the full rate over `ramp_hours`."""
    frac = np.clip(starts / (trace["ramp_hours"] * 3600.0), 0.0, 1.0)
    return trace["ramp_start"] + (1.0 - trace["ramp_start"]) * frac


def conversation_shape(starts: np.ndarray, params: dict) -> np.ndarray:
    """Relative conversation rate per window: base + morning and afternoon peaks, weekend dip, ramp."""
    prof, trace = params["conversation_profile"], params["trace"]
    h = _window_hours(starts, trace["window_s"])

    def peak(centre: float) -> np.ndarray:
        d = (h - centre + 12.0) % 24.0 - 12.0  # circular distance in hours
        return np.exp(-0.5 * (d / prof["peak_sigma_h"]) ** 2)

    daily = prof["base"] + peak(prof["morning_peak_h"]) + prof["afternoon_peak_ratio"] * peak(prof["afternoon_peak_h"])
    weekday = (starts // DAY_S + trace["first_day_weekday"]) % 7
    week = np.where(weekday >= 5, prof["weekend_factor"], 1.0)
    return daily * week * _ramp(starts, trace)


def api_shape(starts: np.ndarray, params: dict, rng: np.random.Generator) -> np.ndarray:
    """Relative API rate per window: hour profile x daily drift x AR(1) log irregularity x ramp."""
    api, trace = params["api_rate"], params["trace"]
    h = _window_hours(starts, trace["window_s"])
    profile = np.asarray(api["api_hour_profile"], dtype=float)
    hourly = np.interp(h, np.arange(25) + 0.5, np.append(profile, profile[0]), period=24)
    day = (starts // DAY_S).astype(np.int64)
    drift = rng.normal(0.0, api["api_day_log_sigma"], day.max() + 1)[day]
    noise = lfilter([1.0], [1.0, -api["api_window_ar1_phi"]], rng.normal(0.0, api["api_window_log_sigma"], len(starts)))
    return hourly * np.exp(drift + noise) * _ramp(starts, trace)


def window_arrivals(starts: np.ndarray, counts: np.ndarray, cvs: np.ndarray, window_s: int,
                    rng: np.random.Generator) -> np.ndarray:
    """Arrival times (float s): per window, counts[w] + 1 Gamma gaps of CV cvs[w] rescaled to fill the window."""
    draws = counts + 1
    shape = np.repeat(1.0 / cvs ** 2, draws)
    gaps = rng.gamma(shape, 1.0) + 1e-12  # a tiny floor: shape < 1 can underflow to 0
    group = np.repeat(np.arange(len(counts)), draws)
    ends = np.cumsum(draws) - 1
    # normalize within the window first, so the running sum stays exact to ~1e-12 of a window
    csum = np.cumsum(gaps / np.bincount(group, weights=gaps)[group])
    before = np.concatenate(([0.0], csum[ends[:-1]]))
    frac = np.clip(csum - before[group], 0.0, 1.0)
    keep = np.ones(len(gaps), dtype=bool)
    keep[ends] = False  # the last gap closes the window; it is not an arrival
    return starts[group[keep]] + window_s * frac[keep]


def _lognormal_cv(median: float, log_sigma: float, n: int, rng: np.random.Generator) -> np.ndarray:
    return np.clip(median * np.exp(rng.normal(0.0, log_sigma, n)), 0.3, 6.0)


def service_arrivals(params: dict, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Arrival times, service index (0 conversation, 1 API) and the window of every request."""
    trace = params["trace"]
    window_s = trace["window_s"]
    starts = np.arange(0, trace["days"] * DAY_S, window_s, dtype=np.int64).astype(float)
    totals = trace["requests"] * np.array([1.0 - trace["api_share"], trace["api_share"]])
    shapes = [conversation_shape(starts, params), api_shape(starts, params, rng)]
    cv_params = [(params["conversation_window_cv"]["median"], params["conversation_window_cv"]["log_sigma"]),
                 (params["api_rate"]["api_window_cv_median"], params["api_rate"]["api_window_cv_log_sigma"])]
    times, service, window = [], [], []
    for s, (shape, total, (cv_med, cv_sig)) in enumerate(zip(shapes, totals, cv_params)):
        counts = rng.poisson(total * shape / shape.sum())
        cvs = _lognormal_cv(cv_med, cv_sig, len(starts), rng)
        times.append(window_arrivals(starts, counts, cvs, window_s, rng))
        service.append(np.full(counts.sum(), s, dtype=np.int8))
        window.append(np.repeat(np.arange(len(starts)), counts))
    return np.concatenate(times), np.concatenate(service), np.concatenate(window)


def failure_mask(window: np.ndarray, params: dict, rng: np.random.Generator) -> np.ndarray:
    """Failures rise with load: p = base x (window load / mean load)^slope, base set for the target share."""
    fail = params["failures"]
    load = np.bincount(window).astype(float)
    rel = (load / load[load > 0].mean()) ** fail["load_slope"]
    base = fail["share"] * len(window) / float(np.sum(load * rel))
    return rng.random(len(window)) < np.clip(base * rel[window], 0.0, 0.5)


def request_response(service: np.ndarray, gpt4: np.ndarray, params: dict,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Conversation: log-normal request, median response linear in request. API: weak Gaussian copula."""
    n = len(service)
    z1, z2 = rng.standard_normal(n), rng.standard_normal(n)
    req, resp = np.empty(n), np.empty(n)
    conv_lengths = params["conversation_lengths"]
    for model, is_gpt4 in (("ChatGPT", False), ("GPT-4", True)):
        m = (service == 0) & (gpt4 == is_gpt4)
        p = conv_lengths[model]
        req[m] = np.exp(p["request_log_mu"] + p["request_log_sigma"] * z1[m])
        median = p["response_median_intercept"] + p["response_median_slope"] * np.rint(req[m])
        resp[m] = np.maximum(median, 1.0) * np.exp(p["response_log_sigma"] * z2[m])
    a = params["api_lengths"]
    m = service == 1
    rho = a["copula_rho"]
    req[m] = np.exp(a["request_log_mu"] + a["request_log_sigma"] * z1[m])
    resp[m] = np.exp(a["response_log_mu"] + a["response_log_sigma"] * (rho * z1[m] + np.sqrt(1 - rho ** 2) * z2[m]))
    caps = np.where(gpt4, params["token_caps"]["GPT-4"], params["token_caps"]["ChatGPT"])
    return np.clip(np.rint(req), 1, caps).astype(np.int64), np.clip(np.rint(resp), 1, caps).astype(np.int64)


def sample_trace(params: dict, seed: int | None = None) -> pl.DataFrame:
    """The default trace as a BurstGPT v1 table, sorted by timestamp (whole seconds since midnight of day 0)."""
    rng = np.random.default_rng(params["trace"]["seed"] if seed is None else seed)
    times, service, window = service_arrivals(params, rng)
    order = np.argsort(times, kind="stable")
    times, service, window = times[order], service[order], window[order]
    shares = params["models_gpt4_share"]
    gpt4 = rng.random(len(times)) < np.where(service == 0, shares["conversation"], shares["api"])
    req, resp = request_response(service, gpt4, params, rng)
    resp = np.where(failure_mask(window, params, rng), 0, resp)
    return pl.DataFrame({
        "Timestamp": np.floor(times).astype(np.int64),
        "Model": np.where(gpt4, "GPT-4", "ChatGPT"),
        "Request tokens": req,
        "Response tokens": resp,
        "Total tokens": req + resp,
        "Log Type": np.asarray(SERVICES)[service],
    })


def write_sample(trace: pl.DataFrame, out: str | Path) -> Path:
    with atomic_path(out, ".csv") as tmp:
        trace.write_csv(tmp, line_terminator="\n")
    return Path(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m servetrace.sample", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="CSV file to write")
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: the one in the parameters)")
    ap.add_argument("--params", type=Path, default=PARAMS_PATH, help="fitted parameters (JSON)")
    args = ap.parse_args(argv)
    try:
        trace = sample_trace(load_params(args.params), args.seed)
        write_sample(trace, args.out)
    except ServetraceError as exc:
        raise SystemExit(f"error: {exc}") from None
    print(f"wrote {args.out}: {trace.height} rows")


if __name__ == "__main__":
    main()
