"""Rate over time: a planted diurnal cycle yields its peak hour and a 24 h period."""

import numpy as np
import pytest

from test_stages_support import canonical, run_stages


@pytest.fixture(scope="module")
def diurnal_run(tmp_path_factory):
    rng = np.random.default_rng(11)
    # Thinned Poisson process over 3 days, rate peaking at 14:30 with 5x peak-to-trough.
    t = np.sort(rng.uniform(0, 3 * 86400, 150_000))
    hour = (t % 86400) / 3600
    rate = 1 + (2 / 3) * np.cos(2 * np.pi * (hour - 14.5) / 24)
    t = t[rng.uniform(0, rate.max(), len(t)) < rate]
    table = canonical(t, input_tokens=np.ones(len(t)), output_tokens=np.ones(len(t)))
    return run_stages(tmp_path_factory.mktemp("diurnal"), table)


def test_peak_hour_and_period(diurnal_run):
    findings, tables = diurnal_run
    d = findings["diurnal"]
    assert d["peak_hour"] == 14
    assert d["trough_hour"] == 2
    assert d["peak_to_trough"] == pytest.approx(5.0, rel=0.2)
    assert findings["periodicity"]["dominant_periods_s"][0] == pytest.approx(86400, rel=0.05)
    assert "rate_decomposition" in tables
    assert findings["periodicity"]["seasonal_share"] > 0.5


def test_short_trace_has_no_diurnal(tmp_path):
    findings, _ = run_stages(tmp_path, canonical(np.arange(0, 3600.0, 2)))
    assert "one day" in findings["diurnal"]["absent"]


def test_a_period_needs_two_cycles_in_the_series():
    """A ramp over the whole series puts its power at the series length; that is a trend, not a
    period. A planted 1 h cycle in a 3 h series is found; the 3 h length never is."""
    from servetrace.stages.periodicity import dominant_periods

    bin_s = 10.0
    t = np.arange(0, 3 * 3600, bin_s)
    rate = 100 + 0.01 * t + 5 * np.sin(2 * np.pi * t / 3600) + 20 * np.sin(np.pi * t / t[-1])
    periods = dominant_periods(rate, bin_s)
    assert periods["period_s"][0] == pytest.approx(3600, rel=1e-6)
    assert (periods["period_s"] <= len(t) * bin_s / 2).all()
    assert 0 < periods["power_share"].sum() < 1
