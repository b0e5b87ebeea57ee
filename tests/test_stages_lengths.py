"""Lengths: quantiles, correlations and fits against numpy / scipy on the same rows."""

import numpy as np
import pytest
from scipy import stats

from test_stages_support import canonical, run_stages


@pytest.fixture(scope="module")
def lengths_run(tmp_path_factory):
    rng = np.random.default_rng(7)
    n = 30_000
    inp = np.maximum(1, np.round(rng.lognormal(6.0, 0.8, n))).astype(int)
    out = np.maximum(0, np.round(0.3 * inp + rng.exponential(100, n))).astype(int)
    t = np.cumsum(rng.exponential(1.0, n))
    table = canonical(t, input_tokens=inp, output_tokens=out, failed=out == 0)
    findings, tables = run_stages(tmp_path_factory.mktemp("lengths"), table)
    return inp, out, findings, tables


def test_quantiles_are_linear_interpolation(lengths_run):
    inp, out, findings, _ = lengths_run
    for name, x in (("input", inp), ("output", out)):
        f = findings["lengths"][name]
        assert f["mean"] == pytest.approx(x.mean(), rel=1e-9)
        for q in (50, 90, 99):
            assert f[f"p{q}"] == pytest.approx(np.quantile(x, q / 100), rel=1e-9)


def test_correlations_match_scipy(lengths_run):
    inp, out, findings, _ = lengths_run
    c = findings["lengths"]["correlation"]
    assert c["pearson"] == pytest.approx(stats.pearsonr(inp, out).statistic, rel=1e-8)
    assert c["spearman"] == pytest.approx(stats.spearmanr(inp, out).statistic, rel=1e-8)
    assert c["kendall"] == pytest.approx(stats.kendalltau(inp, out).statistic, rel=1e-8)


def test_lognormal_input_is_recovered(lengths_run):
    _, _, findings, _ = lengths_run
    f = findings["lengths"]["input"]
    assert f["best_fit"]["family"] in ("lognormal", "pareto_lognormal")
    assert f["fits"]["lognormal"]["params"]["mu"] == pytest.approx(6.0, rel=0.01)
    assert f["fits"]["lognormal"]["params"]["sigma"] == pytest.approx(0.8, rel=0.02)


def test_conditional_output_grows_with_input(lengths_run):
    _, _, _, tables = lengths_run
    med = tables["conditional_output"].filter(tables["conditional_output"]["requests"] > 100)["output_p50"].to_numpy()
    assert np.all(np.diff(med) > 0)
    hist = tables["length_hist"]
    for field in ("input", "output"):
        assert hist.filter(hist["field"] == field)["share"].sum() == pytest.approx(1.0)


def test_correlations_from_pair_counts_match_scipy_with_heavy_ties():
    from servetrace.stats.correlation import correlations

    rng = np.random.default_rng(9)
    for n, hi in ((2_000, 6), (40_000, 400)):
        x = rng.integers(0, hi, n)
        y = x // 2 + rng.integers(0, hi, n)
        pairs, counts = np.unique(np.stack([x, y]), axis=1, return_counts=True)
        c = correlations(pairs[0], pairs[1], counts)
        assert c["rows"] == n
        assert c["pearson"] == pytest.approx(stats.pearsonr(x, y).statistic, rel=1e-12)
        assert c["spearman"] == pytest.approx(stats.spearmanr(x, y).statistic, rel=1e-12)
        assert c["kendall"] == pytest.approx(stats.kendalltau(x, y).statistic, rel=1e-12)


def test_length_quantiles_by_level_match_numpy(lengths_run):
    inp, out, _, tables = lengths_run
    q = tables["length_quantiles"].filter(tables["length_quantiles"]["dimension"] == "all")
    for field, x in (("input", inp), ("output", out)):
        row = q.filter(q["field"] == field).row(0, named=True)
        assert row["requests"] == len(x)
        assert row["std"] == pytest.approx(x.std(), rel=1e-9)
        assert (row["min"], row["max"]) == (x.min(), x.max())
        for p in (10, 25, 50, 75, 90, 95, 99):
            assert row[f"p{p}"] == pytest.approx(np.quantile(x, p / 100), rel=1e-12)


def test_conditional_output_quantiles_match_numpy(lengths_run):
    inp, out, _, tables = lengths_run
    bucket = np.floor(np.log2(inp)).astype(int)
    for row in tables["conditional_output"].iter_rows(named=True):
        y = out[bucket == row["bucket"]]
        assert row["requests"] == len(y)
        assert row["output_mean"] == pytest.approx(y.mean(), rel=1e-12)
        for p in (10, 25, 50, 75, 90):
            assert row[f"output_p{p}"] == pytest.approx(np.quantile(y, p / 100), rel=1e-12)
