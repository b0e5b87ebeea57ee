"""A fast start: a characterize imports the heavy libraries only where the trace needs them, and
the numpy / scipy.special stand-ins for them give scipy's numbers."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest
from scipy import signal, stats

from conftest import shared_file
from servetrace.stats.pmf import _cdf
from servetrace.stages.periodicity import periodogram


@pytest.mark.parametrize("n", [8, 9, 100, 101, 2001])
def test_periodogram_equals_scipy_signal(n):
    rng = np.random.default_rng(n)
    x = rng.normal(size=n) + np.sin(np.arange(n) / 5) + 0.01 * np.arange(n)
    f1, p1 = signal.periodogram(x, fs=0.1, detrend="linear")
    f2, p2 = periodogram(x, 0.1)
    np.testing.assert_array_equal(f1, f2)
    np.testing.assert_allclose(p2, p1, rtol=1e-12, atol=1e-12 * p1.max())


def test_acf_at_equals_statsmodels_acf_to_the_bit():
    from statsmodels.compat.scipy import _next_regular
    from statsmodels.tsa.stattools import acf

    from servetrace.stages.periodicity import acf_at, five_smooth

    assert [five_smooth(n) for n in range(1, 5000)] == [_next_regular(n) for n in range(1, 5000)]
    rng = np.random.default_rng(5)
    for n in (3, 48, 49, 168, 337, 1440, 4321):
        x = rng.gamma(2.0, 3.0, n) + 3 * np.sin(np.arange(n) / 4)
        for lag in sorted({1, 2, 24, n // 3, n - 1}):
            if 0 < lag < n:
                assert acf_at(x, lag) == float(acf(x, nlags=lag, fft=True)[lag]), (n, lag)
    assert acf_at(np.ones(50), 3) is None and acf_at(x, 0) is None and acf_at(x, len(x)) is None


def test_zipf_exponent_equals_scipy_bounded_minimizer():
    from scipy import optimize, special

    from servetrace.stats.families import _zipf_exponent

    rng = np.random.default_rng(7)
    for a in (1.2, 1.7, 2.5):
        x = rng.zipf(a, 20_000).astype(float)
        want = optimize.minimize_scalar(lambda s: s * np.log(x).sum() + x.size * np.log(special.zeta(s, 1)),
                                        bounds=(1.0001, 20.0), method="bounded", options={"xatol": 1e-9}).x
        assert abs(_zipf_exponent(x) - want) < 1e-6, a


@pytest.mark.parametrize("a", [0.0, 1e-6, 0.3, 0.9, 0.999, 1 - 1e-9])
def test_ar1_equals_scipy_lfilter_with_state(a):
    from servetrace.generation.modulation import ar1

    eps = np.random.default_rng(1).standard_normal(20_000)
    want, _ = signal.lfilter([0.7], [1.0, -a], eps, zi=[a * 0.4])
    np.testing.assert_allclose(ar1(a, 0.7, eps, 0.4), want, rtol=1e-9, atol=1e-12 * np.abs(want).max())
    assert ar1(a, 0.7, eps[:0], 0.4).size == 0


def test_length_family_cdfs_equal_scipy_stats():
    x = np.r_[0.0, 0.5, np.geomspace(1e-3, 1e6, 400)]
    cases = [("exponential", {"mean": 321.0}, stats.expon(scale=321.0)),
             ("lognormal", {"mu": 6.1, "sigma": 1.3}, stats.lognorm(s=1.3, scale=np.exp(6.1))),
             ("gamma", {"shape": 0.7, "scale": 900.0}, stats.gamma(a=0.7, scale=900.0)),
             ("weibull", {"shape": 1.8, "scale": 450.0}, stats.weibull_min(c=1.8, scale=450.0))]
    for family, params, dist in cases:
        np.testing.assert_allclose(_cdf(family, params, x), dist.cdf(x), rtol=1e-14, atol=1e-300, err_msg=family)


def test_a_small_trace_without_failures_never_imports_scipy_stats_signal_statsmodels_altair_or_pandas(tmp_path):
    trace = shared_file("azure2023", "AzureLLMInferenceTrace_conv.csv")
    code = ("import sys\nfrom servetrace.characterization import characterize\n"
            f"characterize({str(trace)!r}, {str(tmp_path)!r}, quiet=True)\n"
            "print(sorted(m for m in ('scipy.stats', 'scipy.signal', 'statsmodels', 'altair', 'pandas') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "report.html").exists() and (tmp_path / "bundle.json").exists()


def test_ingest_imports_neither_scipy_pandas_polars_nor_pydantic(tmp_path):
    """`servetrace ingest` needs DuckDB and Arrow only: the bundle's family names come without scipy,
    Arrow <-> numpy without pandas, the options are parsed without pydantic (typer < 0.29)."""
    trace = shared_file("azure2023", "AzureLLMInferenceTrace_conv.csv")
    code = ("import sys\nfrom servetrace.cli import main\n"
            f"sys.argv = ['servetrace', 'ingest', {str(trace)!r}, '--out', {str(tmp_path)!r}]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('scipy', 'pandas', 'polars', 'pydantic') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert pq.read_metadata(tmp_path / "requests.parquet").num_rows == 19_366


@pytest.mark.parametrize("kind", ["int8", "int16", "int32", "int64", "uint64", "float32", "float64"])
def test_arrow_to_numpy_through_buffers_equals_pyarrow(kind):
    import pyarrow as pa

    from servetrace.arrays import numpy_of

    values = np.arange(-5, 45).astype(kind) if kind[0] != "u" else np.arange(50).astype(kind)
    mask = np.zeros(50, bool)
    mask[[0, 7, 8, 31, 49]] = True
    arr = pa.array(values, mask=mask)
    fill = 0 if kind[0] == "u" else -1
    for a in (arr, arr.slice(3, 40), arr.slice(9, 0)):
        want = np.where(np.asarray(a.is_null()), fill, np.nan_to_num(a.to_numpy(zero_copy_only=False))).astype(kind)
        got = numpy_of(a, null=fill)
        assert got.dtype == np.dtype(kind) and np.array_equal(got, want)
    clean = pa.chunked_array([pa.array(values[:20]), pa.array(values[20:]).slice(5)])
    assert np.array_equal(numpy_of(clean), clean.to_numpy())
    empty = numpy_of(pa.chunked_array([], pa.from_numpy_dtype(np.dtype(kind))))
    assert empty.dtype == np.dtype(kind) and empty.size == 0
    assert np.array_equal(numpy_of(arr), arr.to_numpy(zero_copy_only=False), equal_nan=True)  # nulls: pyarrow's way


def test_numpy_to_arrow_through_buffers_equals_pyarrow():
    import pyarrow as pa

    from servetrace.arrays import arrow_of, strings_of

    rng = np.random.default_rng(3)
    for x in (rng.normal(size=70), rng.integers(-9, 9, 70).astype(np.int32), rng.integers(0, 9, 70).astype(np.uint16),
              rng.random(70) < 0.3, np.zeros(0), np.zeros(0, bool)):
        assert arrow_of(x).equals(pa.array(x))
        mask = rng.random(len(x)) < 0.2
        assert arrow_of(x, mask=mask).equals(pa.array(x, mask=mask))
        assert arrow_of(x[::2]).equals(pa.array(x[::2]))  # a strided view is copied, not misread
    names = ["GPT-4", None, "", "modèle ü", "a" * 300]
    assert strings_of(names).equals(pa.array(names, pa.string()))
    assert strings_of([]).equals(pa.array([], pa.string()))
