"""The bundle's `sessions.window`: what the trace's span start does to its sessions.

A trace is a window cut from a running service: some sessions are already under way when it
starts (left truncation), and the first turn of theirs it shows is a follow-up, seen as a new
session (a prefix chain's first request carries context from before the span). Two measures:

`returns`: whether follow-ups come back at the same pace all through the span. For a request at
t >= lag, whether its session's previous turn came within `lag` s (the median gap) does not
depend on t under any stationary session process, whatever the sessions under way at the start:
that turn is inside the span either way. So the share of such requests per fifth of [lag, end]
is flat when the session process is stationary; its chi-square p (2 x 5 table) is the test.
Mooncake's rises from 0.03 to 0.71: follow-ups come back sooner as the trace goes on, a
calendar-time change no model of sessions under way at the start explains (generation's return
clock, generation/session_starts.py, follows it).

`under_way`: the sessions under way at the span start, by delayed entry. An under-way session
shows its next turn within its remaining gap, which for a stationary process has tail
R(x) = E[(G - x)+] / E[G] (G a gap between turns); past `burn_s` (R <= 5 %) nearly all have
shown, so the first turns seen after it are sessions started inside the span: their rate is the
start rate and their turns PMF (right-censored only, bundle/turns.py) is uncut on the left.
Under way at the start: first turns seen before `burn_s` beyond the start rate, over 1 - R(burn);
checked against the stationary renewal count, start rate x mean session duration
((turns - 1) x mean gap). Generation does not draw these sessions apart: the start share per bin
(`start_share`) starts the first turns seen as sessions, and on a planted trace of sessions
under way at its start that regenerates the requests and first turns per bin and the turns per
session as seen (tests/test_session_window.py).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from servetrace.bundle.turns import turns_model

TAIL = 0.05  # under-way sessions left to show at `burn_s`
FIFTHS = 5


def returns(arrival: np.ndarray, gap: np.ndarray) -> dict | None:
    """{lag_s, share (per fifth of [origin + lag, end]), requests (per fifth), p}: the share of
    requests whose session's previous turn came within `lag_s` (the median gap). None with
    fewer than two gaps or a span shorter than two lags."""
    ok = np.isfinite(gap)
    if ok.sum() < 2:
        return None
    lag = float(np.median(gap[ok]))
    a = arrival - arrival.min()
    span = float(a.max())
    if span < 2 * lag or lag <= 0:
        return None
    at = a >= lag
    fifth = np.clip(((a[at] - lag) / (span - lag) * FIFTHS).astype(np.int64), 0, FIFTHS - 1)
    hit = np.where(ok[at], gap[at], np.inf) <= lag
    n = np.bincount(fifth, minlength=FIFTHS)
    return returns_of(lag, n, np.bincount(fifth, weights=hit.astype(float), minlength=FIFTHS))


def returns_of(lag: float, n: np.ndarray, k: np.ndarray) -> dict:
    """`returns`' dict from the requests `n` and those within the lag `k` per fifth."""
    p = 1.0
    if 0 < k.sum() < n.sum():
        from scipy.stats import chi2_contingency

        table = np.array([k, n - k])[:, n > 0]
        p = float(chi2_contingency(table, correction=False).pvalue) if table.shape[1] > 1 else 1.0
    return {"lag_s": lag, "share": [float(x / m) if m else None for x, m in zip(k, n)], "requests": n.tolist(), "p": p}


def _burn(gaps: np.ndarray) -> tuple[float, float]:
    """(x, R(x)): the least observed gap x with R(x) = E[(G - x)+] / E[G] <= TAIL."""
    g = np.sort(gaps)
    excess = (np.cumsum(g[::-1])[::-1] - g * np.arange(len(g), 0, -1)) / len(g)  # E[(G - g_i)+]
    tail = excess / g.mean()
    i = int(np.argmax(tail <= TAIL))
    return float(g[i]), float(tail[i])


def under_way(frame: pl.DataFrame, scale: float = 1.0) -> dict | None:
    """{burn_s, start_rate_rps, under_way_at_start, renewal_under_way, turns (of the sessions
    started inside the span)} from `session_frame`'s requests (with `turns`); `scale`: requests
    of the trace per request of the frame (a sample's). None with too few gaps or a burn time
    past half the span (sessions too long for the span to tell)."""
    gaps = frame["gap_s"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    gaps = gaps[np.isfinite(gaps)]
    if len(gaps) < 20 or gaps.mean() <= 0:
        return None
    origin = float(frame["arrival_s"].min())
    span = float(frame["arrival_s"].max()) - origin
    burn, tail = _burn(gaps)
    if burn >= span / 2:
        return None
    first = frame.filter(pl.col("turn") == 1)
    t0 = first["arrival_s"].to_numpy() - origin
    late = t0 >= burn
    if late.sum() < 2:
        return None
    after = frame.filter(pl.col("session").is_in(first.filter(pl.Series(late))["session"].implode()))
    a_first = after.filter(pl.col("turn") == 1)
    a_follow = after.filter(pl.col("turn") > 1)
    turns = turns_model(a_first["turns"].to_numpy(), a_first["left_s"].to_numpy(),
                        a_follow["gap_s"].cast(pl.Float64).to_numpy(), a_follow["turn"].to_numpy() - 1)
    return under_way_of(burn, tail, span, int(late.sum()), int((~late).sum()), turns, float(gaps.mean()), scale)


def under_way_of(burn: float, tail: float, span: float, late: int, early: int, turns: dict, gap_mean: float,
                 scale: float) -> dict:
    """`under_way`'s dict from the burn time and its tail, the sessions that start after and before
    it, the turns model of the late ones and the mean gap."""
    rate = float(late / (span - burn))
    under = max(float(early - rate * burn), 0.0) / (1 - tail)
    mean_turns = float(np.dot(turns["values"], turns["probs"]))
    return {"burn_s": burn, "start_rate_rps": rate * scale, "under_way_at_start": under * scale,
            "renewal_under_way": rate * (mean_turns - 1) * gap_mean * scale,
            "turns": {"values": turns["values"], "probs": turns["probs"], "mean": mean_turns,
                      "sessions": late}}


def session_window(frame: pl.DataFrame, scale: float = 1.0) -> dict:
    """The bundle's `sessions.window`: {returns, stationary (returns' p >= 0.001), under_way}."""
    gap = frame["gap_s"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    ret = returns(frame["arrival_s"].to_numpy(), gap)
    return {"returns": ret, "stationary": None if ret is None else ret["p"] >= 1e-3,
            "under_way": under_way(frame, scale)}
