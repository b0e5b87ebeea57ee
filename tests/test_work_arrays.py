"""The row stream's work arrays (arrays.Scratch) and the run-by-run sums that use them give the
numbers of the per-row expressions they replace, bit for bit: a batch's statistics must not depend
on whether its temporaries were fresh or reused."""

from __future__ import annotations

import numpy as np
import pytest

from servetrace.arrays import Scratch
from servetrace.bundle.ranks import _power
from servetrace.rows.moments import Moments, segment_sums, starts_of


def test_scratch_reuses_a_name_and_grows():
    work = Scratch()
    a = work("x", 100)
    assert a.shape == (100,) and a.dtype == np.float64
    b = work("x", 80)
    assert b.shape == (80,) and np.shares_memory(a, b)  # the same memory, not a new array
    assert not np.shares_memory(work("y", 80), b)
    c = work("x", 10_000)  # longer than held: a new array
    assert c.shape == (10_000,) and not np.shares_memory(c, a)
    assert work("x", 50, np.int64).dtype == np.int64  # another type: a new array
    work.clear()
    assert not np.shares_memory(work("x", 50, np.int64), c)


def _runs(rng, n: int, n_runs: int) -> np.ndarray:
    """Ascending keys: n rows in n_runs runs (each at least one row)."""
    cuts = np.sort(rng.choice(np.arange(1, n), n_runs - 1, replace=False))
    return np.repeat(np.arange(n_runs) * 3, np.diff(np.r_[0, cuts, n]))  # keys with gaps between them


@pytest.mark.parametrize("n_runs", [1, 7, 2000])  # run by run, and past the threshold (np.repeat)
@pytest.mark.parametrize("with_nan", [False, True])
def test_segment_sums_equal_the_per_row_expressions(n_runs, with_nan):
    rng = np.random.default_rng(n_runs)
    n = 20_000
    key = _runs(rng, n, n_runs)
    x = rng.exponential(2.0, n)
    if with_nan:
        x[rng.random(n) < 0.1] = np.nan
    failed = rng.random(n) < 0.05
    groups, sums = segment_sums(key, x, failed, Scratch())
    # the expressions segment_sums computed before its work arrays, written out independently
    starts = np.r_[0, np.flatnonzero(np.diff(key)) + 1]
    requests = np.diff(np.r_[starts, n])
    ok = np.isfinite(x)
    n_iat = np.add.reduceat(ok, starts, dtype=np.int64)
    sum_x = np.add.reduceat(np.where(ok, x, 0.0), starts)
    dev = (x - np.repeat(sum_x / np.maximum(n_iat, 1), requests)) ** 2
    assert np.array_equal(groups, key[starts])
    assert np.array_equal(sums["requests"], requests) and np.array_equal(sums["n_iat"], n_iat)
    assert np.array_equal(sums["sum_x"], sum_x)
    assert np.array_equal(sums["sum_log"], np.add.reduceat(np.log(np.where(ok, x, 1.0)), starts))
    assert np.array_equal(sums["m2"], np.add.reduceat(np.where(ok, dev, 0.0), starts))
    assert np.array_equal(sums["failed"], np.add.reduceat(failed, starts, dtype=np.int64))
    # and the statistics themselves, to rounding
    g = np.searchsorted(starts, np.arange(n), side="right") - 1
    for i in rng.choice(len(starts), min(len(starts), 20), replace=False):
        xi = x[(g == i) & ok]
        if xi.size:
            assert sums["sum_x"][i] == pytest.approx(xi.sum(), rel=1e-12)
            assert sums["m2"][i] == pytest.approx(((xi - xi.mean()) ** 2).sum(), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("n_runs", [3, 300])
def test_moments_by_runs_equal_moments_by_row_groups(n_runs):
    rng = np.random.default_rng(7)
    n, k = 50_000, 400
    levels = np.sort(rng.choice(k, n_runs, replace=False))
    counts = rng.multinomial(n - n_runs, np.full(n_runs, 1 / n_runs)) + 1
    group = np.repeat(levels, counts)
    x = rng.gamma(0.5, 3.0, n)
    by_rows, by_runs = Moments(k), Moments(k, Scratch())
    for batch in range(2):  # merged over two batches
        by_rows.add(x, group)
        by_runs.add_runs(x, np.cumsum(counts) - counts, counts, levels)
    for a, b in zip(by_rows.result(), by_runs.result()):
        assert np.array_equal(a, b, equal_nan=True)
    _, mean, std = by_runs.result()
    first = levels[0]
    xs = np.concatenate([x[group == first]] * 2)
    assert mean[first] == pytest.approx(xs.mean(), rel=1e-12) and std[first] == pytest.approx(xs.std(), rel=1e-9)


@pytest.mark.parametrize("n_runs", [5, 1500])
def test_weibull_powers_equal_the_per_row_expression(n_runs):
    rng = np.random.default_rng(n_runs)
    n = 10_000
    starts = starts_of(_runs(rng, n, n_runs))
    counts = np.diff(np.r_[starts, n])
    shape, scale = rng.uniform(0.3, 2.0, n_runs), rng.uniform(0.1, 5.0, n_runs)
    shape[::4] = np.nan  # a run without a fit
    log_x = np.log(rng.exponential(1.0, n))
    log_x[rng.random(n) < 0.1] = np.nan  # a row without an inter-arrival
    used, total = _power(starts, shape, scale, log_x, Scratch())
    k = np.repeat(shape, counts)
    ok = np.isfinite(log_x) & np.isfinite(k)
    with np.errstate(invalid="ignore"):
        term = np.exp(k * (log_x - np.repeat(np.log(scale), counts)))
    assert np.array_equal(used, np.add.reduceat(ok, starts) > 0)
    assert np.array_equal(total, np.add.reduceat(np.where(ok, term, 0.0), starts))
    i = int(np.flatnonzero(used)[0])
    rows = slice(starts[i], starts[i] + counts[i])
    x = np.exp(log_x[rows])
    assert total[i] == pytest.approx(np.nansum((x / scale[i]) ** shape[i]), rel=1e-12)
