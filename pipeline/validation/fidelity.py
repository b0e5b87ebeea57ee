"""How close a synthetic trace is to its source: the numbers of fidelity.json and their checks."""

from __future__ import annotations

import numpy as np
import polars as pl

from servetrace.settings import Settings
from servetrace.stats import clock
from servetrace.stats import fidelity as m
from servetrace.settings import FidelitySettings
from servetrace.validation.noise import noise_floors, pair_max, with_floor

SCHEMA = "servetrace.fidelity/v1"
LENGTHS = ("input", "output", "reason")
PAIRS = {"input_output": ("input_tokens", "output_tokens"), "input_reason": ("input_tokens", "reason_tokens")}


def _col(df: pl.DataFrame, name: str, dtype=np.float64) -> np.ndarray:
    if name not in df.columns:
        return np.empty(0, dtype=dtype)
    return df.get_column(name).drop_nulls().to_numpy().astype(dtype, copy=False)


def _pair(df: pl.DataFrame, a: str, b: str) -> tuple[np.ndarray, np.ndarray]:
    if a not in df.columns or b not in df.columns:
        return np.empty(0), np.empty(0)
    both = df.select(a, b).drop_nulls()
    return both.get_column(a).to_numpy(), both.get_column(b).to_numpy()


def _client_counts(df: pl.DataFrame) -> np.ndarray:
    if "client_id" not in df.columns:
        return np.empty(0)
    counts = df.get_column("client_id").drop_nulls().value_counts()
    return counts.get_column("count").to_numpy()


def _failure_rate(df: pl.DataFrame) -> float | None:
    if "failed" not in df.columns or df.height == 0:
        return None
    return float(df.get_column("failed").fill_null(False).mean())


def window_table(src_t: np.ndarray, syn_t: np.ndarray, window_s: float, min_cover: float) -> pl.DataFrame:
    """One row per compared window: its start, both rates and the absolute percentage error."""
    if len(src_t) == 0 or len(syn_t) == 0:
        starts = cover = np.empty(0)
    else:
        starts, cover = m.window_grid(src_t, syn_t, window_s, min_cover)
    src_rps = m.window_rates(src_t, starts, cover, window_s)
    syn_rps = m.window_rates(syn_t, starts, cover, window_s)
    return pl.DataFrame({"window_start_s": starts, "covered_s": cover, "source_rps": src_rps,
                         "synthetic_rps": syn_rps, "ape": m.rate_ape(src_rps, syn_rps)})


def arrivals(src_t: np.ndarray, syn_t: np.ndarray, window_s: float, scales_s, min_cover: float) -> tuple[dict, pl.DataFrame]:
    """The arrival numbers of two traces' arrival times (rate per window, IAT CV, IDC per scale over
    their common whole windows) and the per-window table."""
    windows = window_table(src_t, syn_t, window_s, min_cover)
    ape = windows.get_column("ape").drop_nans().drop_nulls()
    span = common_span(src_t, syn_t, window_s)
    a, b = _within(src_t, span), _within(syn_t, span)
    return {"windows_compared": int(len(ape)),
            "rate_mape": float(ape.mean()) if len(ape) else None,
            "rate_max_ape": float(ape.max()) if len(ape) else None,
            "burstiness_span_s": list(span) if span else None,
            "iat_cv": {"source": m.iat_cv(a), "synthetic": m.iat_cv(b)},
            "idc": {str(s): {"source": m.idc(a, s, span), "synthetic": m.idc(b, s, span)} for s in scales_s}}, windows


def arrival_errors(f: dict) -> dict[str, float | None]:
    """The arrival checks' values: rate MAPE, and the relative error of IAT CV and of IDC per scale."""
    out = {"rate_mape": f["rate_mape"], "iat_cv": m.relative_error(f["iat_cv"]["source"], f["iat_cv"]["synthetic"])}
    out.update({f"idc_{s}": m.relative_error(p["source"], p["synthetic"]) for s, p in f["idc"].items()})
    return out


def length_numbers(a: pl.DataFrame, b: pl.DataFrame) -> dict[str, float | None]:
    """The length checks' values of trace b against trace a: KS of each length (reason where both
    have them) and |difference| of the input / output and input / reason Spearman."""
    out = {}
    for name in LENGTHS:
        x, y = _col(a, f"{name}_tokens"), _col(b, f"{name}_tokens")
        if name != "reason" or (len(x) and len(y)):
            out[f"ks_{name}"] = m.ks_distance(x, y)
    for key, (c1, c2) in PAIRS.items():
        pair = _pair_of(lambda d: m.spearman(*_pair(d, c1, c2)), a, b)
        if key != "input_reason" or pair["source"] is not None or pair["synthetic"] is not None:
            out[f"spearman_{key}"] = _abs_diff(pair)
    return out


def length_floors(source: pl.DataFrame, seeds: tuple[pl.DataFrame, ...] | None) -> dict[str, dict]:
    """{check: {seed_to_seed, half_to_half}} of the length checks: the largest over pairs of the
    seed workloads, and between the source's rows split in two by a hash of the row."""
    odd = source.select((pl.int_range(pl.len(), dtype=pl.UInt64).hash(seed=0) % 2 == 1).alias("odd"))["odd"]
    half = length_numbers(source.filter(~odd), source.filter(odd)) if source.height >= 2 else {}
    seed = pair_max(length_numbers, seeds) if seeds else {}
    return {k: {"seed_to_seed": seed.get(k), "half_to_half": half.get(k)} for k in {**half, **seed}}


def _pair_of(fn, source: pl.DataFrame, synthetic: pl.DataFrame) -> dict:
    return {"source": fn(source), "synthetic": fn(synthetic)}


def fidelity(source: pl.DataFrame, synthetic: pl.DataFrame, settings: Settings = Settings(),
             thresholds: FidelitySettings = FidelitySettings(),
             reuse: dict | None = None, seeds: tuple[pl.DataFrame, ...] | None = None
             ) -> tuple[dict, dict[str, pl.DataFrame]]:
    """Fidelity numbers (fidelity.json) and the tables the page draws from; `reuse`: the block
    reuse and session numbers (`validate.reuse`), checked here when present; `seeds`: workloads
    of the generator's floor seeds, for the arrival and length checks' seed-to-seed noise floor
    (validation/noise.py; the half-to-half floor needs only the source)."""
    seed_frames = seeds
    src_t, syn_t = _col(source, "arrival_s"), _col(synthetic, "arrival_s")
    seeds = tuple(_col(f, "arrival_s") for f in seeds) if seeds else None
    # a source written on a coarse clock (whole seconds) is compared with workloads read on that clock
    tick = clock.clock_of(src_t, settings.stages.grid_share, settings.stages.deround_from_s)
    syn_t = clock.on_clock(syn_t, tick)
    seeds = tuple(clock.on_clock(s, tick) for s in seeds) if seeds else seeds
    numbers, windows = arrivals(src_t, syn_t, settings.window_s, settings.idc_scales_s, thresholds.min_window_cover)
    out: dict = {
        "schema": SCHEMA,
        "rows": {"source": source.height, "synthetic": synthetic.height},
        "window_s": settings.window_s,
        "windows_compared": numbers["windows_compared"],
        "rate_mape": numbers["rate_mape"],
        "rate_max_ape": numbers["rate_max_ape"],
        "mean_rps": {"source": _mean_rps(source), "synthetic": _mean_rps(synthetic)},
        "burstiness_span_s": numbers["burstiness_span_s"],
        "source_clock_s": tick,
        "iat_cv": numbers["iat_cv"],
        "idc": numbers["idc"],
        "noise_floor": noise_floors(src_t, seeds, settings.window_s, settings.idc_scales_s, thresholds.min_window_cover),
    }
    out["noise_floor"].update(length_floors(source, seed_frames))
    for name in LENGTHS:
        a, b = _col(source, f"{name}_tokens"), _col(synthetic, f"{name}_tokens")
        if name == "reason" and (len(a) == 0 or len(b) == 0):
            continue
        out[f"ks_{name}"] = m.ks_distance(a, b)
        out[f"wasserstein_{name}"] = m.wasserstein(a, b)
        out[f"mean_{name}"] = {"source": float(a.mean()) if len(a) else None,
                               "synthetic": float(b.mean()) if len(b) else None}
    out["spearman"] = {
        key: _pair_of(lambda d, a=a, b=b: m.spearman(*_pair(d, a, b)), source, synthetic)
        for key, (a, b) in PAIRS.items()
    }
    ks = tuple(sorted(set(settings.top_k) | {thresholds.top_share_k}))
    src_top, syn_top = m.top_shares(_client_counts(source), ks), m.top_shares(_client_counts(synthetic), ks)
    out["top_share"] = {str(k): {"source": src_top[k] if src_top else None,
                                 "synthetic": syn_top[k] if syn_top else None} for k in ks}
    out["failure_rate"] = _pair_of(_failure_rate, source, synthetic)
    if reuse:
        out["reuse"] = reuse
    out["checks"] = checks(out, thresholds)
    out["pass"] = all(c["pass"] for c in out["checks"].values() if c["pass"] is not None)
    out["settings"] = {"characterize": settings.to_dict(), "thresholds": thresholds.to_dict()}
    return out, {"windows": windows, "length_quantiles": length_quantiles(source, synthetic)}


def common_span(a: np.ndarray, b: np.ndarray, window_s: float) -> tuple[float, float] | None:
    """The whole rate windows inside [latest first arrival, earliest last arrival] of arrival times
    `a` and `b` (that span itself when it holds no whole window). Burstiness is compared over time
    both traces cover, and over whole windows: a trace cut mid-window leaves a partial window whose
    fitted rate is diluted, an edge effect of the fit rather than a property of the workload."""
    if len(a) == 0 or len(b) == 0:
        return None
    lo, hi = max(a.min(), b.min()), min(a.max(), b.max())
    if hi <= lo:
        return None
    w_lo, w_hi = np.ceil(lo / window_s) * window_s, np.floor(hi / window_s) * window_s
    return (float(w_lo), float(w_hi)) if w_hi > w_lo else (float(lo), float(hi))


def _within(t: np.ndarray, span: tuple[float, float] | None) -> np.ndarray:
    return t[(t >= span[0]) & (t < span[1])] if span else t[:0]


def _mean_rps(df: pl.DataFrame) -> float | None:
    t = _col(df, "arrival_s")
    if len(t) < 2 or t.max() <= t.min():
        return None
    return float(len(t) / (t.max() - t.min()))


def _check(value: float | None, threshold: float, reason: str = "") -> dict:
    if value is None:
        return {"value": None, "threshold": threshold, "pass": None, "reason": reason or "not computable"}
    return {"value": value, "threshold": threshold, "pass": bool(value <= threshold)}


def _abs_diff(pair: dict) -> float | None:
    if pair["source"] is None or pair["synthetic"] is None:
        return None
    return abs(pair["synthetic"] - pair["source"])


def checks(f: dict, t: FidelitySettings) -> dict[str, dict]:
    """Pass / fail per metric; a metric that cannot be computed on these traces passes as null."""
    errors = arrival_errors(f)
    out = {"rate_mape": _check(errors.pop("rate_mape"), t.rate_mape, "no common window"),
           "iat_cv": _check(errors.pop("iat_cv"), t.iat_cv_rel)}
    out.update({k: _check(v, t.idc_rel, "trace shorter than two bins") for k, v in errors.items()})
    for name in LENGTHS:
        if f"ks_{name}" in f:
            out[f"ks_{name}"] = _check(f[f"ks_{name}"], t.ks)
    for key, pair in f["spearman"].items():
        if key == "input_reason" and pair["source"] is None and pair["synthetic"] is None:
            continue
        out[f"spearman_{key}"] = _check(_abs_diff(pair), t.spearman_abs)
    out[f"top_share_{t.top_share_k}"] = _check(_abs_diff(f["top_share"][str(t.top_share_k)]), t.top_share_abs,
                                               "no client ids")
    out["failure_rate"] = _check(_abs_diff(f["failure_rate"]), t.failure_rate_abs)
    for name, floor in (f.get("noise_floor") or {}).items():
        if name in out:
            out[name] = with_floor(out[name], floor)
    reuse = f.get("reuse") or {}
    floor = reuse.get("noise_floor", {})
    for key, limit in (("infinite_hit_rate", t.infinite_hit_abs), ("lru_curve_max_diff", t.lru_curve_abs),
                       ("ks_reuse_distance", t.reuse_ks), ("ks_turns", t.reuse_ks), ("ks_turn_gap", t.reuse_ks),
                       ("ks_think_time", t.reuse_ks), ("ks_context", t.reuse_ks)):
        if key in reuse:
            v = reuse[key]
            why = "a trace without latency_s (think time runs from the previous turn's end)" if key == "ks_think_time" else ""
            out[key] = with_floor(_check(v["diff"] if isinstance(v, dict) else v, limit, why),
                                  floor.get(key) or {"seed_to_seed": None, "half_to_half": None})
    return out


def length_quantiles(source: pl.DataFrame, synthetic: pl.DataFrame, n: int = 101) -> pl.DataFrame:
    """Quantiles of each length field in both traces (long form), for the distribution chart."""
    probs = np.linspace(0, 1, n)
    parts = []
    for name in LENGTHS:
        for trace, df in (("source", source), ("synthetic", synthetic)):
            x = _col(df, f"{name}_tokens")
            if len(x):
                parts.append(pl.DataFrame({"field": name, "trace": trace, "prob": probs,
                                           "tokens": np.quantile(x, probs)}))
    return pl.concat(parts) if parts else pl.DataFrame(schema={"field": pl.String, "trace": pl.String,
                                                                "prob": pl.Float64, "tokens": pl.Float64})
