"""The session model's statistics as SQL aggregates (bundle/session_stats.py, sql/sessions/session_*.sql):
the normal CDF and quantile macros against scipy, and on a trace planted with known session
parameters (geometric turns, lognormal gaps coupled to the first input by a Gaussian copula) the
SQL fit recovers them and equals the Polars form (tests/test_session_sql.py: the same on its
fixtures; test_spark_sessions.py: Spark equal to DuckDB)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.special import ndtr, ndtri

import duckdb

from servetrace import io
from servetrace.bundle import fit, fit_sql
from servetrace.resources import SQL_DIR
from servetrace.settings import FitSettings, SessionModelSettings, Settings
from servetrace.stages.engine import Engine
from test_session_sql import assert_close
from test_stages_support import canonical

P_TURN, MU, SIGMA, RHO = 0.3, 3.0, 0.8, 0.6


def test_normal_macros_match_scipy():
    """normal_cdf within 3e-16 of ndtr (absolute; 1e-14 relative in the lower tail) over |z| <= 9,
    the normal scores (normal_quantile_low and one normal_refine step) within 3e-15 of ndtri
    over p from 2.5e-7 to 1 - 2.5e-7 (the mid-ranks of 2 M values)."""
    con = duckdb.connect()
    con.execute("set variable group_by = 'all'; set variable group_model = false; set variable group_service = false")
    con.execute((SQL_DIR / "macros.sql").read_text(encoding="utf-8"))
    z = np.r_[np.linspace(-9, 9, 36001), 0.46875 * np.sqrt(2), -0.46875 * np.sqrt(2), 4 * np.sqrt(2), -4 * np.sqrt(2)]
    con.register("zs", {"z": z})
    cdf = con.sql("select normal_cdf(z) as f from zs").fetchnumpy()["f"]
    assert np.abs(cdf - ndtr(z)).max() < 3e-16
    assert (np.abs(cdf - ndtr(z)) / ndtr(z))[z < 0].max() < 1e-14
    n = 2_000_000
    p = np.r_[(np.arange(1, 2001) - 0.5) / n, np.linspace(1e-4, 1 - 1e-4, 20001), 1 - (np.arange(1, 2001) - 0.5) / n, 0.5]
    con.register("ps", {"u": p})
    got = con.sql("select case when u > 0.5 then -normal_refine(normal_quantile_low(1 - u), 1 - u) "
                  "else normal_refine(normal_quantile_low(u), u) end as z from ps").fetchnumpy()["z"]
    assert np.abs(got - ndtri(p)).max() < 3e-15


def planted(n_sessions: int = 2500, seed: int = 11):
    """Sessions with geometric turns (p = P_TURN), lognormal gaps (MU, SIGMA) whose normal score is
    RHO-correlated with the session's first input's, starts Poisson over ~42 h, latencies known."""
    rng = np.random.default_rng(seed)
    turns = rng.geometric(P_TURN, n_sessions)
    z1 = rng.standard_normal(n_sessions)
    start = np.cumsum(rng.exponential(60.0, n_sessions))
    sess = np.repeat(np.arange(n_sessions), turns)
    turn = np.concatenate([np.arange(k) for k in turns])
    gap = np.exp(MU + SIGMA * (RHO * z1[sess] + np.sqrt(1 - RHO ** 2) * rng.standard_normal(len(sess))))
    gap[turn == 0] = 0
    arrival = start[sess] + np.concatenate([np.cumsum(gap[sess == s]) for s in range(n_sessions)])
    order = np.argsort(arrival, kind="stable")
    first_in = np.maximum(np.exp(6 + z1), 1).astype(np.int64)
    inputs = first_in[sess] + 200 * turn
    n = len(sess)
    table = canonical(arrival[order], session_id=[f"s{s}" for s in sess[order]],
                      input_tokens=inputs[order], output_tokens=rng.integers(1, 300, n),
                      latency_s=rng.exponential(2.0, n))
    return table, gap[turn > 0]


@pytest.fixture(scope="module")
def fits(tmp_path_factory):
    path = tmp_path_factory.mktemp("session_stats") / "requests.parquet"
    table, gaps = planted()
    io.write_parquet(path, table, {})
    settings = Settings(fit=FitSettings(sessions=SessionModelSettings(by_turns_min=50)))
    return fit_sql.fit_file(path, settings, Engine())["sessions"], fit.fit_bundle(path.parent, settings)["sessions"], gaps


def test_planted_session_parameters_recovered(fits):
    """Turns PMF, the gaps' lognormal (mu, sigma, KS) and quantiles and gap_rho by class recover the
    planted values within their sampling error (4 standard errors; KS within Lilliefors' 1 %)."""
    got, _, gaps = fits
    n_gaps = len(gaps)
    turns = got["turns"]
    geometric = stats.geom(P_TURN).pmf(turns["values"])
    se = np.sqrt(geometric * (1 - geometric) / got["sessions"])
    assert np.all(np.abs(np.array(turns["probs"]) - geometric) < 4 * se + 1e-3)
    assert turns["fit"]["params"]["p"] == pytest.approx(P_TURN, abs=4 * P_TURN * np.sqrt((1 - P_TURN) / got["sessions"]))
    fit_ = got["gap_s"]["fit"]
    assert fit_["params"]["mu"] == pytest.approx(MU, abs=4 * SIGMA / np.sqrt(got["sessions"]))  # gaps clump by session
    assert fit_["params"]["sigma"] == pytest.approx(SIGMA, abs=0.05)
    assert 0 < fit_["ks"] < 1.035 / np.sqrt(got["sessions"])  # Lilliefors 1 %, on the sessions (gaps clump)
    assert fit_["params"]["mu"] == pytest.approx(np.log(gaps).mean(), abs=1e-9)  # the trace's gaps, not a sample of them
    q = dict(zip(np.round(got["gap_s"]["probs"], 2), got["gap_s"]["quantiles"]))
    assert q[0.5] == pytest.approx(np.median(gaps), rel=1e-9) and got["gap_s"]["n"] == n_gaps
    rho = got["by_turns"]["gap_rho"]
    assert len(rho) >= 3 and all(abs(r - RHO) < 0.12 for r in rho[1:])  # classes with gaps (2-3, 4-7, 8+ turns)


def test_planted_sql_aggregates_equal_polars_form(fits):
    """The SQL aggregates' model equals the Polars form's over the frame within 1e-12 (relative)."""
    got, want, _ = fits
    assert got["think_s"]["fit"] is not None and got["window"]["under_way"] is not None
    assert_close(want, got)
