"""Rate over time: hour-of-day and day-of-week profiles, dominant periods (periodogram, ACF),
seasonal decomposition (statsmodels STL / MSTL) when the trace spans two periods."""

from __future__ import annotations

import numpy as np
import polars as pl

from servetrace.findings import Absent, Finding, absent
from servetrace.stages import sql
from servetrace.stages.context import Context, fmt

DAY_S = 86400.0
WEEK_S = 7 * DAY_S


def periodogram(x: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """scipy.signal.periodogram(x, fs, detrend="linear") (boxcar window, density scaling, one-sided)
    in numpy: the same least-squares line removed, the same scaling (equal to rounding, tested).
    Importing scipy.signal costs about a second of start-up (it loads scipy.stats)."""
    n = x.size
    line = np.ones((n, 2))
    line[:, 0] = np.arange(1, n + 1) * 1.0 / n
    coef = np.linalg.lstsq(line, x, rcond=None)[0]
    spec = np.fft.rfft(x - line @ coef)
    power = (np.conjugate(spec) * spec).real / (fs * n)
    power[1: n // 2 + 1 if n % 2 else n // 2] *= 2  # one-sided: every bin but 0 and Nyquist counted twice
    return np.fft.rfftfreq(n, 1.0 / fs), power


def dominant_periods(rate: np.ndarray, bin_s: float, top: int = 3) -> pl.DataFrame:
    """The strongest periods of the rate series by periodogram (mean removed), with power share.
    A period counts only if the series holds at least two of its cycles: a longer one is the
    trace's own length or trend, not a repetition (its power still counts in the shares)."""
    freq, power = periodogram(rate - rate.mean(), 1.0 / bin_s)
    freq, power = freq[1:], power[1:]
    if len(power) == 0 or power.sum() <= 0:
        return pl.DataFrame(schema={"period_s": pl.Float64, "power_share": pl.Float64})
    repeated = np.flatnonzero(1.0 / freq <= len(rate) * bin_s / 2)
    order = repeated[np.argsort(power[repeated])[::-1][:top]]
    return pl.DataFrame({"rank": np.arange(1, len(order) + 1), "period_s": 1.0 / freq[order],
                         "power_share": power[order] / power.sum()})


def five_smooth(n: int) -> int:
    """The least 2^a 3^b 5^c >= n (statsmodels' FFT length for `acf`)."""
    best = 1 << (n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            best = min(best, p35 << (-(-n // p35) - 1).bit_length())
            p35 *= 3
        p5 *= 5
    return best


def acf_at(rate: np.ndarray, lag: int) -> float | None:
    """statsmodels.tsa.stattools.acf(rate, nlags=lag, fft=True)[lag] in numpy, by the same steps
    (equal to the bit, tested): importing stattools costs ~0.15 s of start-up beside STL's."""
    if lag <= 0 or lag >= len(rate) or np.std(rate) == 0:
        return None
    x = np.asarray(rate, dtype=float)
    xo = x - x.mean()
    n = len(xo)
    spec = np.fft.fft(xo, n=five_smooth(2 * n + 1))
    acov = (np.fft.ifft(spec * np.conjugate(spec))[:n] / (n * np.ones(2 * n - 1))[n - 1:]).real
    return float((acov[: lag + 1] / acov[0])[lag])


def decomposition(series: pl.DataFrame, bin_s: float, span_s: float) -> pl.DataFrame | None:
    """STL with a daily period (MSTL daily + weekly from two weeks) on the hourly rate series."""
    if bin_s != 3600.0 or span_s < 2 * DAY_S:
        return None
    from statsmodels.tsa.seasonal import MSTL, STL

    rate = series["rate_rps"].to_numpy().astype(float)
    if span_s >= 2 * WEEK_S:
        res = MSTL(rate, periods=(24, 168)).fit()
        seasonal = {"seasonal_day": res.seasonal[:, 0], "seasonal_week": res.seasonal[:, 1]}
    else:
        res = STL(rate, period=24, robust=True).fit()
        seasonal = {"seasonal_day": res.seasonal}
    return pl.DataFrame({"bin_start_s": series["bin_start_s"], "rate_rps": rate, "trend": res.trend,
                         **seasonal, "resid": res.resid})


def diurnal(hourly: pl.DataFrame, weekday: pl.DataFrame, ctx: Context) -> Finding | Absent:
    if ctx.span_s < DAY_S:
        return Absent("diurnal", f"the trace spans {fmt(ctx.span_s / 3600)} h, less than one day")
    h = hourly.filter(pl.col("rate_rps").is_not_null())
    peak = h.sort(["rate_rps", "hour"], descending=[True, False]).row(0, named=True)
    trough = h.sort(["rate_rps", "hour"]).row(0, named=True)
    ratio = peak["rate_rps"] / trough["rate_rps"] if trough["rate_rps"] > 0 else None
    values = {
        "peak_hour": int(peak["hour"]),
        "trough_hour": int(trough["hour"]),
        "peak_to_trough": ratio if ratio is not None else absent("no requests in the quietest hour"),
        "profile": {str(r["hour"]): r["relative_rate"] for r in hourly.iter_rows(named=True)},
        "local_time": "hours of the trace origin (local midnight of day 0 where the source tells it)",
    }
    if ctx.span_s >= WEEK_S:
        w = weekday.filter(pl.col("rate_rps").is_not_null())
        named = ctx.meta.get("servetrace.origin") not in (None, "")
        values["weekday_profile"] = {str(r["weekday"]): r["relative_rate"] for r in w.iter_rows(named=True)}
        values["weekday_basis"] = "0 = Monday" if named else "day index since the origin modulo 7 (date unknown)"
        if named:
            wk = w.filter(pl.col("weekday") < 5)["rate_rps"].mean()
            we = w.filter(pl.col("weekday") >= 5)["rate_rps"].mean()
            values["weekday_to_weekend"] = wk / we if wk and we else None
    else:
        values["weekday_profile"] = absent("the trace spans less than a week")
    ratio_text = f"{fmt(ratio)}x the quietest ({trough['hour']}:00)" if ratio else "the quietest hour is empty"
    statement = f"Traffic peaks at {peak['hour']}:00 local time, {ratio_text}."
    return Finding("diurnal", values, statement, ["hourly_profile", "weekday_profile"])


def periodicity(con, ctx: Context) -> tuple[list, dict]:
    if ctx.rows < 2 or ctx.span_s <= 0:
        reason = "too few requests" if ctx.rows < 2 else "zero span"
        return [Absent("diurnal", reason), Absent("periodicity", reason)], {}
    sql.run_sql(con, "stg_rate_bins")  # one scan of the arrivals for the series and both profiles
    series = sql.table(con, "rate_series", order_by="bin_idx")
    hourly = sql.table(con, "hourly_profile", order_by="hour")
    weekday = sql.table(con, "weekday_profile", order_by="weekday")
    bin_s = float(sql.sql_variables_value(con, "rate_bin_s"))
    tables = {"rate_series": series, "hourly_profile": hourly, "weekday_profile": weekday}
    found = [diurnal(hourly, weekday, ctx)]
    rate = series["rate_rps"].to_numpy().astype(float)
    if len(rate) < ctx.settings.stages.min_series:
        found.append(Absent("periodicity", f"rate series of {len(rate)} bins is too short"))
        return found, tables
    periods = dominant_periods(rate, bin_s)
    tables["periods"] = periods
    decomp = decomposition(series, bin_s, ctx.span_s)
    if decomp is not None:
        tables["rate_decomposition"] = decomp
    day_lag = int(round(DAY_S / bin_s))
    top = periods.row(0, named=True) if periods.height else None
    values = {
        "rate_bin_s": bin_s,
        "dominant_periods_s": periods["period_s"].to_list(),
        "power_share": periods["power_share"].to_list(),
        "acf_day": acf_at(rate, day_lag) if ctx.span_s >= 2 * DAY_S else absent("less than two days"),
        "decomposition": ("MSTL (24 h, 168 h)" if ctx.span_s >= 2 * WEEK_S else "STL (24 h)") if decomp is not None
        else absent("needs an hourly series over at least two days"),
        "rate_min_rps": float(rate.min()),
        "rate_max_rps": float(rate.max()),
    }
    if decomp is not None:
        var = np.var(decomp["rate_rps"].to_numpy())
        values["seasonal_share"] = float(np.var(decomp["seasonal_day"].to_numpy()) / var) if var > 0 else None
    statement = (f"The rate series ({fmt(bin_s)} s bins) has its strongest period at {fmt(top['period_s'] / 3600)} h "
                 f"({fmt(100 * top['power_share'])} % of the variance)." if top else "The rate series has no variation.")
    found.append(Finding("periodicity", values, statement, list(tables)))
    return found, tables
