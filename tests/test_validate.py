"""Fidelity metrics against independent computations, and validate end to end on planted data."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from scipy import stats

from servetrace.errors import ServetraceError
from servetrace.generation.table import canonical_table
from servetrace.io import write_parquet
from servetrace.stats import fidelity as m
from servetrace.validation import fidelity, validate_traces


def trace(n=40_000, cv=3.0, rate=20.0, seed=0, clients=40) -> pl.DataFrame:
    """Gamma renewal arrivals with inter-arrival CV `cv`; lognormal lengths with rank correlation ~0.6."""
    rng = np.random.default_rng(seed)
    shape = 1 / cv**2
    t = np.cumsum(rng.gamma(shape, 1 / (rate * shape), n))
    z = rng.multivariate_normal([0, 0], [[1, 0.6], [0.6, 1]], n)
    weights = 0.9 ** np.arange(clients)
    return pl.from_arrow(canonical_table({
        "arrival_s": t,
        "client_id": np.array([f"c{i}" for i in range(clients)])[rng.choice(clients, n, p=weights / weights.sum())],
        "input_tokens": np.exp(6 + z[:, 0]).astype(np.int32) + 1,
        "output_tokens": np.exp(5 + 0.8 * z[:, 1]).astype(np.int32) + 1,
        "failed": rng.random(n) < 0.02,
    }))


# ---------------------------------------------------------------- metrics vs scipy / numpy


def test_ks_and_wasserstein_match_scipy_with_ties():
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 50, 3000).astype(float), rng.integers(3, 55, 2000).astype(float)
    assert m.ks_distance(a, b) == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-12)
    assert m.wasserstein(a, b) == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-9)


def test_spearman_matches_scipy():
    rng = np.random.default_rng(2)
    x = rng.integers(0, 30, 5000)
    y = x + rng.integers(0, 30, 5000)
    assert m.spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)


def test_iat_cv_and_idc_by_hand():
    t = np.array([0.0, 1.0, 3.0, 4.0, 6.0])  # gaps 1, 2, 1, 2
    assert m.iat_cv(t) == pytest.approx(np.std([1, 2, 1, 2]) / 1.5)
    # bins of 2 s from t=0: [0,2) -> 2, [2,4) -> 1, [4,6) -> 1 (t=6 is in the partial bin, left out)
    counts = np.array([2, 1, 1])
    assert m.idc(t, 2.0) == pytest.approx(counts.var() / counts.mean())


def test_idc_bins_lie_over_the_stated_span():
    t = np.array([0.5, 1.0, 3.0, 4.0, 6.0, 9.5])
    # span (1, 7), 2 s bins from 1: [1,3) -> 1, [3,5) -> 2, [5,7) -> 1; 0.5 and 9.5 lie outside
    counts = np.array([1, 2, 1])
    assert m.idc(t, 2.0, (1.0, 7.0)) == pytest.approx(counts.var() / counts.mean())
    assert m.idc(t, 2.0, (1.0, 4.9)) is None  # one whole bin


def test_idc_counts_a_sparse_span_by_its_occupied_bins_alike():
    """A dense trace's bins are counted in place, a sparse one's (far more bins than arrivals)
    by its occupied bins only: both give the population variance / mean of every whole bin."""
    rng = np.random.default_rng(4)
    for t, scale in ((np.sort(rng.uniform(0, 2_000, 50_000)), 1.0), (np.sort(rng.uniform(0, 5e7, 300)), 10.0)):
        n = int((t[-1] - t[0]) // scale)
        counts = np.bincount(((t - t[0]) // scale).astype(np.int64), minlength=n)[:n]
        assert m.idc(t, scale) == pytest.approx(counts.var() / counts.mean(), rel=1e-12)


def test_fidelity_idc_uses_the_common_span_for_both_traces():
    """A Poisson synthetic trace that starts 250 s later than the source: both IDCs are binned from
    the common span's start and are near 1 (standard error sqrt(2 / bins))."""
    rng = np.random.default_rng(12)
    src = np.sort(rng.uniform(0, 20_000, 100_000))
    syn = np.sort(rng.uniform(250, 20_250, 100_000))
    out, _ = fidelity(pl.DataFrame({"arrival_s": src}), pl.DataFrame({"arrival_s": syn}))
    lo, hi = out["burstiness_span_s"]
    for scale, pair in out["idc"].items():
        bins = int((hi - lo) // float(scale))
        for side, t in (("source", src), ("synthetic", syn)):
            idx = np.floor((t[(t >= lo) & (t < hi)] - lo) / float(scale)).astype(int)
            counts = np.bincount(idx[idx < bins], minlength=bins)
            assert pair[side] == pytest.approx(counts.var() / counts.mean(), rel=1e-9)
            assert pair[side] == pytest.approx(1.0, abs=4 * np.sqrt(2 / bins))


def test_poisson_process_has_unit_cv_and_idc():
    t = np.cumsum(np.random.default_rng(3).exponential(0.1, 200_000))
    assert m.iat_cv(t) == pytest.approx(1.0, abs=0.01)
    for scale in (1, 10, 60):
        assert m.idc(t, scale) == pytest.approx(1.0, abs=0.1)


def test_window_rates_count_per_covered_second():
    src = np.array([10.0, 20.0, 30.0, 110.0, 150.0, 199.0])
    syn = np.array([5.0, 25.0, 105.0, 120.0, 130.0, 199.5])
    starts, cover = m.window_grid(src, syn, 100.0)
    assert starts.tolist() == [0.0, 100.0]
    assert cover.tolist() == [90.0, 99.0]  # common span [10, 199]
    assert m.window_rates(src, starts, cover, 100.0).tolist() == [3 / 90, 3 / 99]
    assert m.window_rates(syn, starts, cover, 100.0).tolist() == [2 / 90, 4 / 99]


def test_top_shares_by_hand():
    assert m.top_shares(np.array([5, 1, 10, 4]), (1, 2, 5)) == {1: 0.5, 2: 0.75, 5: 1.0}


# ---------------------------------------------------------------- fidelity on planted data


def test_trace_against_itself_passes_every_check():
    src = trace()
    f, _ = fidelity(src, src)
    assert f["pass"] is True
    assert all(c["pass"] for k, c in f["checks"].items() if k != "idc_600")
    assert f["burstiness_span_s"] == [600.0, 1800.0]  # whole windows only: two, too few for IDC at 600 s
    assert f["iat_cv"]["source"] == pytest.approx(3.0, rel=0.15)
    assert f["spearman"]["input_output"]["source"] == pytest.approx(6 / np.pi * np.arcsin(0.3), abs=0.02)


def failing(src: pl.DataFrame, syn: pl.DataFrame) -> set[str]:
    f, _ = fidelity(src, syn)
    return {k for k, c in f["checks"].items() if c["pass"] is False}


def test_longer_inputs_fail_only_the_input_length_check():
    src = trace()
    syn = src.with_columns((pl.col("input_tokens") * 3 // 2).cast(pl.Int32))
    assert failing(src, syn) == {"ks_input"}


def test_shuffled_outputs_fail_only_the_correlation_check():
    src = trace()
    perm = np.random.default_rng(5).permutation(src.height)
    syn = src.with_columns(pl.Series("output_tokens", src["output_tokens"].to_numpy()[perm]))
    assert failing(src, syn) == {"spearman_input_output"}


def test_poisson_arrivals_fail_the_burstiness_checks_but_not_the_rate():
    src = trace(cv=3.0)
    t = src["arrival_s"].to_numpy()
    poisson = np.sort(np.random.default_rng(6).uniform(t.min(), t.max(), src.height))
    got = failing(src, src.with_columns(pl.Series("arrival_s", poisson)))
    assert {"iat_cv", "idc_1", "idc_10", "idc_60"} <= got
    assert "rate_mape" not in got and "ks_input" not in got


def test_missing_requests_fail_the_rate_check():
    src = trace(cv=1.0, n=60_000)
    t = src["arrival_s"].to_numpy()
    keep = (t > t.max() / 2) | (np.arange(len(t)) % 3 != 0)  # a third of the first half gone
    assert "rate_mape" in failing(src, src.filter(pl.Series(keep)))


def test_one_dominant_client_fails_top_share_and_failures_fail_failure_rate():
    src = trace()
    syn = src.with_columns(pl.when(pl.int_range(pl.len()) % 4 == 0).then(pl.lit("c0"))
                           .otherwise(pl.col("client_id")).alias("client_id"), pl.lit(False).alias("failed"))
    assert failing(src, syn) == {"top_share_5", "failure_rate"}


# ---------------------------------------------------------------- the command's outputs


def test_validate_writes_json_and_an_escaped_page(tmp_path):
    src = trace(n=5000).with_columns(pl.lit("<script>alert(1)</script>").alias("client_id"))
    write_parquet(tmp_path / "src.parquet", src.to_arrow())
    result = validate_traces(tmp_path / "src.parquet", tmp_path / "src.parquet", tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "fidelity.json").read_text())
    assert saved["schema"] == "servetrace.fidelity/v1" and saved["pass"] is True
    for key in ("rate_mape", "iat_cv", "idc", "ks_input", "ks_output", "spearman", "top_share", "failure_rate",
                "wasserstein_input", "checks"):
        assert key in saved
    assert saved["idc"]["60"]["source"] == pytest.approx(result["idc"]["60"]["source"])
    page = (tmp_path / "out" / "fidelity.html").read_text()
    assert "<script>alert(1)" not in page and "vegaEmbed(" in page and "http://" not in page.split("<body>")[1]


def test_validate_accepts_an_output_directory(tmp_path):
    (tmp_path / "run").mkdir()
    write_parquet(tmp_path / "run" / "requests.parquet", trace(n=3000).to_arrow())
    result = validate_traces(tmp_path / "run", tmp_path / "run" / "requests.parquet", tmp_path / "out", page=False)
    assert result["pass"] is True and not (tmp_path / "out" / "fidelity.html").exists()


def test_bad_inputs_are_one_line_errors(tmp_path):
    with pytest.raises(ServetraceError, match="no such file"):
        validate_traces(tmp_path / "nope.csv", tmp_path / "nope.csv", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ServetraceError, match="without requests.parquet"):
        validate_traces(tmp_path / "empty", tmp_path / "empty", tmp_path / "out")


def test_a_longer_synthetic_trace_is_compared_over_the_common_whole_windows():
    src = trace(cv=1.0, n=60_000)  # ~3000 s
    extra = np.random.default_rng(9).uniform(3000, 9000, 5_000)  # a sparse tail the source lacks
    syn = pl.concat([src, src.head(5_000).with_columns(pl.Series("arrival_s", np.sort(extra)))])
    f, _ = fidelity(src, syn)
    assert f["iat_cv"]["synthetic"] == pytest.approx(f["iat_cv"]["source"], rel=1e-9)
    assert f["checks"]["idc_10"]["value"] == pytest.approx(0.0, abs=1e-9)
