"""Sessions under way at a trace's start (bundle/under_way.py, `sessions.window`): a planted
window cut from a running service, with known start rate, turns and sessions under way, fitted,
recovered and regenerated; and the returns test that tells such a window from Mooncake's."""

import numpy as np
import polars as pl
import pytest
from scipy import stats

from reuse_traces import TURN_PMF, under_way_trace
from servetrace import io
from servetrace.bundle.fit import fit_bundle
from servetrace.bundle.under_way import returns
from servetrace.generation import GenerateOptions, generate_table
from servetrace.generation.session_starts import return_clock

SPAN_S = 6000.0
RATE = 0.5  # 6,000 sessions over [-6,000, 6,000) s
GAP_MEAN = 600.0 * np.exp(0.5 ** 2 / 2)  # lognormal, median 600 s, sigma 0.5
TURNS_MEAN = float(np.dot(np.arange(1, len(TURN_PMF) + 1), TURN_PMF))


@pytest.fixture(scope="module", params=[0, 1])
def window(request, tmp_path_factory):
    d = tmp_path_factory.mktemp("under_way")
    table, planted, under = under_way_trace(seed=request.param)
    io.write_parquet(d / "requests.parquet", table, {"servetrace.format": "test"})
    return table, planted, under, fit_bundle(d)


def _per_session(table) -> pl.DataFrame:
    return pl.from_arrow(table.select(["arrival_s", "session_id"])).sort(["session_id", "arrival_s"])


def _returns(table) -> dict:
    f = _per_session(table)
    gap = f.select(pl.col("arrival_s").diff().over("session_id")).to_series().fill_null(np.nan).to_numpy()
    return returns(f["arrival_s"].to_numpy(), gap)


def _per_tenth(table) -> tuple[np.ndarray, np.ndarray]:
    """(requests, first turns seen) per tenth of the span."""
    f = _per_session(table)
    tenth = np.clip((f["arrival_s"].to_numpy() / SPAN_S * 10).astype(np.int64), 0, 9)
    first = f.select(pl.col("arrival_s").rank("ordinal").over("session_id") == 1).to_series().to_numpy()
    return np.bincount(tenth, minlength=10), np.bincount(tenth[first], minlength=10)


def test_sessions_under_way_at_the_start_are_recovered(window):
    """About 650 sessions are under way at the span start. Delayed entry gives their number within
    10 % (seeds 0-3: 0.92-0.99 of the truth), the start rate within 5 % (0.498-0.510 against 0.5),
    and the stationary renewal count (start rate x mean duration, planted 617) within 12 % (573-584:
    the turns PMF of the sessions started inside the span comes back at mean 2.72-2.77 against
    2.82). That PMF is within KS 0.04 of the planted one (about 2,500 sessions: the sampling KS is
    0.033 at 99 %; seeds 0-3 give 0.017-0.030, the first turns seen taken as sessions 0.022-0.034)."""
    table, planted, under, b = window
    w = b["sessions"]["window"]["under_way"]
    assert w["under_way_at_start"] == pytest.approx(under, rel=0.1)
    assert w["start_rate_rps"] == pytest.approx(RATE, rel=0.05)
    assert w["renewal_under_way"] == pytest.approx(RATE * (TURNS_MEAN - 1) * GAP_MEAN, rel=0.12)
    cdf = np.interp(np.arange(1, len(TURN_PMF) + 1), w["turns"]["values"], np.cumsum(w["turns"]["probs"]))
    assert np.abs(cdf - np.cumsum(TURN_PMF)).max() <= 0.04
    assert w["turns"]["mean"] == pytest.approx(TURNS_MEAN, abs=0.15)
    # the burn time: under-way sessions have nearly all shown by then (a remaining gap > it: 5 %)
    assert 2 * 600.0 * 0.75 < w["burn_s"] < SPAN_S / 2


def test_a_window_of_a_stationary_service_returns_at_one_pace(window):
    """The share of requests whose previous turn came within the median gap is the same in every
    fifth of the span (chi-square p >= 0.001; seeds 0-3 give 0.05-0.94): the test that calls the
    window stationary, sessions under way at its start and all."""
    table, _, _, b = window
    r = b["sessions"]["window"]["returns"]
    assert b["sessions"]["window"]["stationary"] and r["p"] >= 1e-3
    assert max(r["share"]) - min(r["share"]) < 0.05
    # by hand from the table: the median gap, then per fifth of [lag, end] the requests whose
    # previous turn came within it
    f = _per_session(table).with_columns(gap=pl.col("arrival_s").diff().over("session_id"))
    lag = f["gap"].drop_nulls().median()
    end = f["arrival_s"].max() - f["arrival_s"].min()
    per = (f.with_columns(t=pl.col("arrival_s") - pl.col("arrival_s").min()).filter(pl.col("t") >= lag)
           .with_columns(fifth=((pl.col("t") - lag) / (end - lag) * 5).floor().clip(0, 4),
                         hit=pl.col("gap").fill_null(float("inf")) <= lag)
           .group_by("fifth").agg(n=pl.len(), k=pl.col("hit").sum()).sort("fifth"))
    assert r["lag_s"] == pytest.approx(lag, rel=1e-12)
    assert r["requests"] == per["n"].to_list()
    assert r["share"] == pytest.approx((per["k"] / per["n"]).to_list(), rel=1e-12)
    k, n = per["k"].to_numpy(), per["n"].to_numpy()
    assert r["p"] == pytest.approx(stats.chi2_contingency(np.array([k, n - k]), correction=False).pvalue, rel=1e-9)


def test_a_window_with_sessions_under_way_regenerates(window):
    """Generated from the fit (the first turns seen start sessions, per bin of `start_share`; the
    return clock stays off: the window is stationary), the requests come back within 6 % (seeds
    0-3 of both planted traces: 0.988-1.050), requests and first turns per tenth of the span within
    20 % / 25 % of the source's (0.042-0.153 / 0.061-0.191; two planted traces of the same process
    differ by 0.044-0.071 / 0.089-0.134: the generated windows' rates add their own noise) and the
    turns per session as seen within KS 0.03 (0.003-0.009): the sessions under way at the start
    need no model of their own to regenerate the window."""
    table, _, _, b = window
    assert return_clock(b) is None
    src_req, src_first = _per_tenth(table)
    assert src_first[0] > 2 * src_first[5:].mean()  # the under-way sessions' first turns seen
    syn, _ = generate_table(b, GenerateOptions(seed=0))
    req, first = _per_tenth(syn)
    assert req.sum() == pytest.approx(src_req.sum(), rel=0.06)
    assert np.abs(req / src_req - 1).max() <= 0.2
    assert np.abs(first / src_first - 1).max() <= 0.25
    turns = lambda t: _per_session(t).group_by("session_id").len()["len"].to_numpy()
    assert stats.ks_2samp(turns(table), turns(syn)).statistic <= 0.03
    assert _returns(syn)["p"] >= 1e-3
