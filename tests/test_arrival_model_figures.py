"""The arrival model's candidate traces are drawn and scored by shortcuts that must give the numbers
of the plain expressions bit for bit (a bundle's candidates and choice must not depend on them):
the index of dispersion of sorted arrivals at several scales at once (`idc_sorted`) against `idc`
scale by scale, `Figures` of sorted arrivals against the figures of the unsorted path, the per-cell
draws (`unit_gaps_into`) against `unit_gaps` of the repeated parameters, the clock's in-place
reading and its detection against the expressions they replace."""

from __future__ import annotations

import numpy as np
import pytest

from servetrace.arrays import Scratch
from servetrace.bundle.arrival_model import Figures
from servetrace.generation import arrivals as ga
from servetrace.stats import clock
from servetrace.stats import fidelity as metrics

SCALES = (1.0, 10.0, 60.0, 600.0, 0.37)


def _traces():
    rng = np.random.default_rng(5)
    yield np.sort(rng.uniform(0, 5_000, 100_000))  # many arrivals a bin: bins found by bisection
    yield np.floor(rng.exponential(0.01, 300_000).cumsum())  # a 1 s clock, ~100 a tick
    yield np.sort(rng.uniform(0, 1e7, 5_000))  # far more bins than arrivals: occupied bins only
    yield np.sort(rng.normal(1.7e9, 1e4, 50_000))  # epoch seconds
    yield np.sort(np.r_[rng.uniform(0, 10, 1_000), rng.uniform(1e6, 1e6 + 10, 1_000)])  # two bursts, a long gap
    yield np.array([3.0, 3.0])  # zero span
    yield np.array([1.0])


@pytest.mark.parametrize("k", range(7))
def test_idc_sorted_equals_idc_scale_by_scale(k):
    a = list(_traces())[k]
    work = Scratch()
    for _ in range(2):  # reused work arrays give the same figures
        assert metrics.idc_sorted(a, SCALES, work) == {s: metrics.idc(a, s) for s in SCALES}
    assert metrics.idc_sorted(a, SCALES) == {s: metrics.idc(a, s) for s in SCALES}


@pytest.mark.parametrize("k", range(5))
def test_figures_of_sorted_arrivals_equal_the_plain_figures(k):
    a = list(_traces())[k]
    fast = Figures(a, SCALES, Scratch())
    plain = Figures(np.r_[a[1:], a[:1]] if len(a) > 2 else a, SCALES)  # unsorted: the plain path
    assert fast.idc == {s: metrics.idc(a, s) for s in SCALES} == plain.idc
    assert fast.cv == metrics.iat_cv(a) == plain.cv
    assert np.array_equal(fast.gaps, np.sort(np.diff(a)))


@pytest.mark.parametrize("a", [[1.0, 2.0, np.nan, 4.0, 9.0], [1.0, 2.0, 4.0, np.nan]])
def test_figures_with_a_nan_take_the_plain_path(a):
    a = np.array(a)
    with pytest.raises(ValueError):  # as `idc` does: no figures made of a NaN
        metrics.idc(a, 1.0)
    with pytest.raises(ValueError):
        Figures(a, SCALES)


def test_unit_gaps_into_equals_unit_gaps_and_leaves_the_stream_where_it_did():
    rng = np.random.default_rng(3)
    for trial in range(150):
        n = int(rng.integers(1, 8))
        fam = rng.integers(0, 2, n).astype(np.int8)
        shape = rng.choice([0.2, 0.7, 1.0, 1.0, 2.5, 9.0], n) * rng.choice([1.0, 1.0 + 1e-9], n)
        size = rng.integers(0, 3_000, n) if trial % 3 else rng.integers(0, 50, n)  # long cells, and short
        seed = int(rng.integers(1 << 30))
        r1, r2 = np.random.default_rng(seed), np.random.default_rng(seed)
        want = ga.unit_gaps(r1, np.repeat(fam, size), np.repeat(shape, size))
        got = np.full(int(size.sum()), np.nan)
        ga.unit_gaps_into(r2, fam, shape, size, got)
        assert np.array_equal(want, got)
        assert r1.random() == r2.random()


def test_on_clock_in_place_equals_the_plain_reading():
    t = np.random.default_rng(2).uniform(1.7e9, 1.7e9 + 1e4, 10_000)
    want = np.floor(t / 1.0) * 1.0
    copy = t.copy()
    got = clock.on_clock(copy, 1.0, in_place=True)
    assert np.shares_memory(got, copy) and np.array_equal(got, want)
    assert clock.on_clock(t, None, in_place=True) is t


def _clock_of_plain(t, grid_share, coarse_from_s):
    for g in clock.GRIDS_S:
        if g < coarse_from_s:
            break
        if np.mean(np.abs(t - np.rint(t / g) * g) <= 1e-9 + 8 * np.spacing(np.abs(t))) >= grid_share:
            return g
    return None


@pytest.mark.parametrize("base", [0.0, 1_699_999_200.0])  # epoch seconds on every grid
@pytest.mark.parametrize("grid", [60.0, 1.0, 0.1, 0.001, None])
def test_clock_of_equals_the_plain_expression(base, grid):
    rng = np.random.default_rng(1)
    u = rng.uniform(0, 1e5, 20_000)
    t = base + (u if grid is None else np.round(u / grid) * grid)
    for share in (0.5, 0.9):
        for coarse in (0.01, 0.0001):
            assert clock.clock_of(t, share, coarse) == _clock_of_plain(t, share, coarse)
    assert clock.clock_of(t) == (grid if grid and grid >= 0.01 else None)  # the grid planted is found


def _weibull_shape_plain(xs, mean_log):
    """The bisection as written before its loop-invariant parts were hoisted."""
    import math

    y = xs / np.nanmax(xs, axis=1, keepdims=True)
    ln_y = np.log(y)
    target = mean_log - np.log(np.nanmax(xs, axis=1))
    lo, hi = np.full(len(xs), math.log(1e-3)), np.full(len(xs), math.log(1e3))
    for _ in range(50):
        mid = (lo + hi) / 2
        k = np.exp(mid)[:, None]
        yk = np.where(np.isfinite(y), y ** k, 0.0)
        g = np.nansum(yk * np.where(np.isfinite(ln_y), ln_y, 0.0), axis=1) / yk.sum(axis=1) - 1 / k[:, 0] - target
        up = g > 0
        hi, lo = np.where(up, mid, hi), np.where(up, lo, mid)
    return np.exp((lo + hi) / 2)


@pytest.mark.parametrize("seed", range(6))
def test_weibull_shape_equals_the_plain_bisection(seed):
    """The per-window Weibull MLE (arrivals stage): rows of NaN-padded gaps, some with a tiny first gap."""
    from servetrace.stats import families

    rng = np.random.default_rng(seed)
    rows, cols = int(rng.integers(1, 300)), int(rng.integers(2, 400))
    x = rng.weibull(rng.uniform(0.3, 3), (rows, cols)) * rng.uniform(0.01, 100, (rows, 1))
    x[rng.uniform(size=x.shape) < 0.3] = np.nan
    x[:, 0] = np.where(rng.uniform(size=rows) < 0.5, x[:, 0], 1e-300)
    x = np.sort(x, axis=1)
    _, _, _, mean_log = families._row_stats(x)
    with np.errstate(all="ignore"):
        want = _weibull_shape_plain(x, mean_log)
        got = families._weibull_shape(x, mean_log)
    assert np.array_equal(got, want, equal_nan=True)
    fitted = np.isfinite(got)
    assert fitted.any() and (got[fitted] > 0).all()


def _integrals_plain(sigma2, taus, window_s, theta_s):
    """The modulation's I(tau) with its grid made on every call, as before it was held."""
    u = np.unique(np.r_[np.linspace(0, 5, 2001), np.geomspace(5, window_s, 4000)])
    c = np.expm1(np.exp(-u[:, None] / np.asarray(theta_s)[None, :]) @ sigma2)
    du = np.diff(u)
    first = np.r_[0, np.cumsum((c[1:] + c[:-1]) / 2 * du)]
    uc = u * c
    second = np.r_[0, np.cumsum((uc[1:] + uc[:-1]) / 2 * du)]
    x = np.r_[taus, window_s]
    return 2 * (x * np.interp(x, u, first) - np.interp(x, u, second))


@pytest.mark.parametrize("window_s", [600, 3600.0])
def test_modulation_integrals_on_the_held_grid_equal_the_plain_ones(window_s):
    from servetrace.bundle import modulation
    from servetrace.settings import ModulationSettings

    theta = ModulationSettings().theta_s
    taus = np.array([1.0, 2.0, 5.0, 10.0, 60.0])
    rng = np.random.default_rng(4)
    for _ in range(5):  # evaluations of one fit share the grid; another window gets its own
        s2 = rng.uniform(0, 2, len(theta))
        assert np.array_equal(modulation._integrals(s2, taus, window_s, theta), _integrals_plain(s2, taus, window_s, theta))
    u, _, _ = modulation._grid(float(window_s), tuple(theta))
    assert not u.flags.writeable and u[-1] == window_s


def _ks_sorted_plain(a, b):
    at = np.concatenate([metrics._distinct(a), metrics._distinct(b)])
    return float(np.abs(np.searchsorted(a, at, "right") / a.size - np.searchsorted(b, at, "right") / b.size).max())


def test_ks_sorted_equals_the_plain_two_sided_search():
    """The candidates' inter-arrival KS: each side's CDF at its own values from its runs' ends."""
    rng = np.random.default_rng(8)
    for _ in range(200):
        na, nb = int(rng.integers(1, 400)), int(rng.integers(1, 400))
        tie = rng.choice([None, 1.0, 0.25])  # continuous gaps, or a clock's ties
        a, b = rng.exponential(1.0, na), rng.gamma(0.5, 2.0, nb)
        if tie:
            a, b = np.floor(a / tie) * tie, np.floor(b / tie) * tie
        if rng.uniform() < 0.1:
            a[rng.integers(na)] = -0.0
        a, b = np.sort(a), np.sort(b)
        assert metrics.ks_sorted(a, b) == _ks_sorted_plain(a, b)
    a, b = np.sort(np.r_[1.0, 2.0, np.nan, np.nan]), np.array([1.5, 2.0])
    assert metrics.ks_sorted(a, b) == _ks_sorted_plain(a, b)
