"""Inter-arrival fits per client and window from per-group sums (no per-request Python).

Per window: rate = arrivals / the seconds of the window the trace covers (its first to its last
arrival, so a trace that starts or stops mid-window does not dilute that window's rate), the CV
of inter-arrival times, and Gamma or Weibull,
each moment-matched like ServeGen (Gamma shape = 1/CV^2, shape x scale = 1/rate; Weibull shape
from the CV, scale so the mean is 1/rate), the family with the higher log-likelihood kept."""

from __future__ import annotations

import numpy as np
import polars as pl
import scipy

from servetrace.stats import families
from servetrace.stats.families import weibull_shape_for_cv

MIN_IATS = 3  # fewer inter-arrivals than this in a window: no family fitted
IAT_FLOOR_S = 1e-6  # tied timestamps would give log(0): inter-arrivals are floored here
MIN_COVER_S = 1.0  # a window the trace touches for less than this counts as covered this long
DENSE_TICK = 2.0  # arrivals per clock tick from which the CV comes from the counts per tick
MIN_CLOCK_CV = 0.05  # a CV under a coarse clock is at least this (a near-regular process)


def covered_seconds(window_start: pl.Expr, window_s: float, first_s: float, last_s: float) -> pl.Expr:
    """Seconds of each window [start, start + window_s) inside the trace's covered span
    [first arrival, last arrival], at least MIN_COVER_S (a lone arrival on a window edge)."""
    lo = pl.max_horizontal(window_start.cast(pl.Float64), pl.lit(first_s))
    hi = pl.min_horizontal(window_start.cast(pl.Float64) + window_s, pl.lit(last_s))
    return (hi - lo).clip(lower_bound=min(MIN_COVER_S, window_s))


def _moment_params(stats: pl.DataFrame) -> pl.DataFrame:
    """Gamma and Weibull parameters with mean 1/rate and the observed CV, for each row of `stats`."""
    cv = stats["cv"].to_numpy().astype(float)
    rate = stats["rate_rps"].to_numpy().astype(float)
    ok = np.isfinite(cv) & (cv > 0) & (rate > 0)
    mean = np.where(rate > 0, 1.0 / np.where(rate > 0, rate, 1.0), np.nan)
    safe_cv = np.where(ok, cv, 1.0)
    g_shape = 1.0 / safe_cv**2
    w_shape = weibull_shape_for_cv(safe_cv)
    w_scale = mean / np.exp(scipy.special.gammaln(1 + 1 / w_shape))
    nan = np.full(cv.size, np.nan)
    return stats.with_columns(
        pl.Series("g_shape", np.where(ok, g_shape, nan)),
        pl.Series("g_scale", np.where(ok, mean / g_shape, nan)),
        pl.Series("w_shape", np.where(ok, w_shape, nan)),
        pl.Series("w_scale", np.where(ok, w_scale, nan)),
    )


def clock_cv(span_s: pl.Expr | float, clock_s: float) -> pl.Expr:
    """The inter-arrival CV of a group whose timestamps a clock of `clock_s` seconds wrote (stats/clock.py).

    Where a tick holds DENSE_TICK arrivals or more (on average), the gaps are mostly ties and say
    nothing of the process inside a tick; the counts per tick are exact, and a renewal process's
    counts have an index of dispersion that tends to CV^2 once a bin holds many arrivals, so
    CV^2 = sum over ticks of n^2 / N - N / ticks. Sparser, the gaps are seen whole but each end is
    moved by a uniform rounding: their variance is the process's + clock^2 / 6 (Sheppard)."""
    n, ticks = pl.col("requests"), pl.lit(span_s) / clock_s if isinstance(span_s, float) else span_s / clock_s
    idc = pl.col("sum_tick_n2") / n - n / ticks
    sheppard = (pl.col("iat_std") ** 2 - clock_s**2 / 6).clip(lower_bound=0.0)
    cv2 = pl.when(n / ticks >= DENSE_TICK).then(idc).otherwise(sheppard / pl.col("iat_mean") ** 2)
    return cv2.clip(lower_bound=MIN_CLOCK_CV**2).sqrt()


def moment_fits(stats: pl.DataFrame, span_s: pl.Expr | float, clock_s: float | None = None) -> pl.DataFrame:
    """Adds rate_rps, cv and the moment-matched Gamma (g_shape, g_scale) and Weibull (w_shape,
    w_scale) to `stats`, one row per group with requests, n_iat, iat_mean, iat_std (and, with a
    coarse `clock_s`, sum_tick_n2: the CV is then the process's under the clock, `clock_cv`);
    `span_s` is the seconds each group covers."""
    cv = clock_cv(span_s, clock_s) if clock_s else pl.col("iat_std") / pl.col("iat_mean")
    return _moment_params(stats.with_columns(
        (pl.col("requests") / span_s).alias("rate_rps"),
        pl.when(pl.col("n_iat") >= 2).then(cv).alias("cv"),
    ))


def choose_family(stats: pl.DataFrame) -> pl.DataFrame:
    """The family with the higher log-likelihood (family, shape, scale, ll_gamma, ll_weibull), from
    moment_fits' parameters and the sums n_iat, sum_log = sum(log x), sum_x = sum(x) and
    sum_wpow = sum((x / w_scale)^w_shape) over each group's inter-arrivals x."""
    m = pl.col("n_iat")
    a, th = pl.col("g_shape"), pl.col("g_scale")
    k, lam = pl.col("w_shape"), pl.col("w_scale")
    ll_gamma = (a - 1) * pl.col("sum_log") - pl.col("sum_x") / th - m * (a.map_batches(_lgamma) + a * th.log())
    ll_weibull = m * k.log() - m * k * lam.log() + (k - 1) * pl.col("sum_log") - pl.col("sum_wpow")
    fitted = (m >= MIN_IATS) & a.is_not_nan() & a.is_not_null()
    weibull = fitted & (ll_weibull > ll_gamma)
    return stats.with_columns(
        pl.when(fitted).then(pl.when(weibull).then(pl.lit("weibull")).otherwise(pl.lit("gamma"))).alias("family"),
        pl.when(fitted).then(pl.when(weibull).then(k).otherwise(a)).alias("shape"),
        pl.when(fitted).then(pl.when(weibull).then(lam).otherwise(th)).alias("scale"),
        ll_gamma.alias("ll_gamma"),
        ll_weibull.alias("ll_weibull"),
    )


def _lgamma(s: pl.Series) -> pl.Series:
    return pl.Series(s.name, scipy.special.gammaln(s.to_numpy().astype(float)))


def iat_ks(iats: np.ndarray, family: str, shape: float, scale: float) -> float | None:
    """Kolmogorov-Smirnov distance of inter-arrival samples to the fitted family."""
    iats = np.sort(iats[np.isfinite(iats)])
    if iats.size < MIN_IATS or not (shape > 0 and scale > 0):
        return None
    x = iats[None, :]
    cdf = families.iat_cdf(family, {"shape": shape, "scale": scale}, x)
    return float(families.ks_distance(x, cdf)[0])
