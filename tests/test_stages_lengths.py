"""Lengths: quantiles, correlations and fits against numpy / scipy on the same rows."""

import numpy as np
import polars as pl
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


def test_dense_ranks_by_counting_equal_the_sorted_ones():
    """Token counts are ranked by counting (integers up to a few times the row count), anything else
    by sorting: the same distinct values and the same rank for every row."""
    from servetrace.stats.correlation import dense_ranks

    rng = np.random.default_rng(4)
    for v in (rng.integers(0, 50, 1_000), rng.integers(0, 5_000, 300).astype(np.int32),
              rng.integers(0, 10**9, 300), np.array([7]), rng.integers(-5, 5, 100)):
        levels, inverse = dense_ranks(v)
        want_levels, want_inverse = np.unique(v, return_inverse=True)
        np.testing.assert_array_equal(levels, want_levels)
        np.testing.assert_array_equal(inverse, want_inverse)


def test_correlations_equal_for_integer_and_float_tokens_and_past_16_bit_ranks():
    """Integer tokens (ranked by counting) and the same values as floats (sorted) give the same
    statistics bit for bit; more than 2^16 distinct values per side take the lexsort path, scipy's."""
    from servetrace.stats.correlation import correlations

    rng = np.random.default_rng(12)
    x = rng.integers(0, 300, 5_000)
    y = x + rng.integers(0, 300, 5_000)
    pairs, counts = np.unique(np.stack([x, y]), axis=1, return_counts=True)
    assert correlations(pairs[0], pairs[1], counts) == correlations(pairs[0].astype(float), pairs[1].astype(float), counts)
    x = rng.permutation(80_000)
    y = x // 3 + rng.integers(0, 70_000, 80_000)
    c = correlations(x, y, np.ones(len(x), dtype=np.int64))
    assert c["kendall"] == pytest.approx(stats.kendalltau(x, y).statistic, rel=1e-12)
    assert c["spearman"] == pytest.approx(stats.spearmanr(x, y).statistic, rel=1e-12)


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


def test_drift_change_point_is_localized_to_its_day(tmp_path):
    """14 days from 05:00 on day 1; input lognormal mu 6 -> 7 at midnight starting day 8, output
    unchanged. Periods start at the origin's midnight, so day 8 alone differs from its predecessor,
    by about the KS distance of the two lognormals (2 Phi(1/2) - 1 = 0.383; sampling and the
    50-bin-per-decade histogram allow 0.06)."""
    rng = np.random.default_rng(21)
    n = 28_000
    t = np.sort(rng.uniform(5 * 3600, 14 * 86400 - 3 * 3600, n))
    mu = np.where(t >= 7 * 86400, 7.0, 6.0)
    table = canonical(t, input_tokens=np.ceil(np.exp(rng.normal(mu, 1.0))).astype(int),
                      output_tokens=np.ceil(np.exp(rng.normal(5.0, 1.0, n))).astype(int))
    findings, tables = run_stages(tmp_path, table)
    drift = findings["lengths"]["drift"]
    assert drift["period_s"] == 86400 and drift["input"]["periods"] == 14
    [change] = drift["input"]["change_points"]
    assert change["period"] == 8 and change["period_start_s"] == 7 * 86400
    assert change["ks_vs_previous"] == pytest.approx(2 * stats.norm.cdf(0.5) - 1, abs=0.06)
    assert drift["output"]["change_points"] == []
    d = tables["length_drift"].filter(pl.col("field") == "input")
    assert d["period_start_s"].to_list() == [k * 86400.0 for k in range(14)]
    assert "input at day 8 of 14" in findings["lengths"]["statement"]


@pytest.mark.parametrize("draw", [
    lambda rng: np.rint(rng.lognormal(5.0, 1.2, 40_000)),
    lambda rng: np.rint(rng.gamma(0.7, 300.0, 30_000)) + 1,
    lambda rng: rng.zipf(1.8, 20_000).astype(float),
])
def test_length_fits_on_distinct_values_equal_the_fits_on_every_value(draw):
    """The length families are fitted on the distinct token counts weighted by their counts: the
    same sums as over every value in another order of additions. Against the fits over every
    value (fit_iat_rows, and the discrete likelihood and KS summed over every value): parameters,
    log-likelihoods and KS within 1e-9 relative; the Zipf exponent, found on a grid narrowed to
    ~1e-8, within 3e-8."""
    from servetrace.stats import families as fam

    x = draw(np.random.default_rng(11))
    got = fam.fit_length_families(x)
    xs = np.sort(x[x > 0])
    n = len(xs)
    every = fam.fit_iat_rows(xs[None, :])
    s = fam._zipf_exponent(xs)
    assert got["zipf"]["params"]["s"][0] == pytest.approx(s, abs=3e-8)
    for family, fit in got.items():
        if family in every:
            for k, v in every[family]["params"].items():
                assert fit["params"][k][0] == pytest.approx(v[0], rel=1e-9), (family, k)
        p = fit["params"]
        hi, lo = (0.0, -1.0) if family == "zipf" else (0.5, -0.5)
        f_hi, f_lo = fam.iat_cdf(family, p, xs[None, :] + hi), fam.iat_cdf(family, p, xs[None, :] + lo)
        below = 0.0 if family == "zipf" else fam.iat_cdf(family, p, np.full((1, 1), 0.5))[0, 0]
        loglik = np.log(np.maximum(f_hi - f_lo, 1e-300)).sum() - n * np.log(1 - below)
        assert fit["loglik"][0] == pytest.approx(loglik, rel=1e-9), family
        assert fit["ks"][0] == pytest.approx(fam.ks_distance(xs[None, :], (f_hi, f_lo))[0], rel=1e-9, abs=1e-12), family
        assert fit["bic"][0] == pytest.approx(fam.N_PARAMS[family] * np.log(n) - 2 * loglik, rel=1e-9)


def _pareto_lognormal_one_xm_at_a_time(x: np.ndarray, counts: np.ndarray) -> dict | None:
    """The Pareto + log-normal EM written the plain way: one EM per candidate xm, in turn."""
    import math

    xq = np.repeat(x, counts)
    c = np.asarray(counts, dtype=float)
    n = c.sum()
    ln = np.log(x)
    mean_ln = float((c * ln).sum() / n)
    best = None
    for q in (0.5, 0.75, 0.9, 0.95):
        xm = float(np.quantile(xq, q))
        if xm <= 0 or c[x >= xm].sum() < 10:
            continue
        in_tail = x >= xm
        log_ratio = np.where(in_tail, np.log(np.maximum(x, xm) / xm), 0.0)
        w, mu, sigma, alpha = 0.8, mean_ln, float(math.sqrt((c * (ln - mean_ln) ** 2).sum() / n) or 1.0), 1.5
        for _ in range(60):
            body = w * np.exp(-0.5 * ((ln - mu) / sigma) ** 2) / (x * sigma * math.sqrt(2 * math.pi))
            tail = np.where(in_tail, (1 - w) * alpha * np.exp(alpha * math.log(xm) - (alpha + 1) * ln), 0.0)
            total = body + tail
            r = np.where(total > 0, body / np.where(total > 0, total, 1), 1.0)
            cr = c * r
            w = float(np.clip(cr.sum() / n, 1e-6, 1 - 1e-6))
            mu = float((cr * ln).sum() / cr.sum())
            sigma = float(max(math.sqrt((cr * (ln - mu) ** 2).sum() / cr.sum()), 1e-6))
            t = c * (1 - r) * in_tail
            alpha = float(np.clip(t.sum() / max((t * log_ratio).sum(), 1e-12), 1e-3, 50.0))
        body = w * np.exp(-0.5 * ((ln - mu) / sigma) ** 2) / (x * sigma * math.sqrt(2 * math.pi))
        tail = np.where(in_tail, (1 - w) * alpha * np.exp(alpha * math.log(xm) - (alpha + 1) * ln), 0.0)
        loglik = float((c * np.log(np.maximum(body + tail, 1e-300))).sum())
        if best is None or loglik > best["loglik"]:
            best = {"params": {"weight": w, "mu": mu, "sigma": sigma, "alpha": alpha, "xm": xm}, "loglik": loglik}
    return best


@pytest.mark.parametrize("draw", [
    lambda rng: np.rint(rng.lognormal(5.0, 1.2, 40_000)),
    lambda rng: np.rint(np.concatenate([rng.lognormal(4.0, 0.6, 9_000), 300 * (1 + rng.pareto(1.3, 3_000))])),
    lambda rng: np.rint(rng.gamma(0.7, 300.0, 30_000)) + 1,
    lambda rng: np.array([1.0] * 8 + [2.0] * 5 + [3.0, 50.0, 900.0] * 3),  # xm of the upper quantiles skipped
    lambda rng: np.arange(1.0, 13.0),  # every xm skipped (under 10 rows at or above each): no fit
])
def test_pareto_lognormal_em_side_by_side_equals_one_em_per_xm(draw):
    """The candidate xm's EMs run as rows of one array: the same parameters and log-likelihood, bit
    for bit, as one EM per xm in turn."""
    from servetrace.stats import families as fam

    x = draw(np.random.default_rng(5))
    v, c = np.unique(x[x > 0], return_counts=True)
    assert fam._pareto_lognormal(v, c) == _pareto_lognormal_one_xm_at_a_time(v, c)


@pytest.mark.parametrize("levels", [1, 2, 37, 70_000])  # ranks past 16 bits sort without the radix path
def test_weighted_inversions_count_every_discordant_pair(levels):
    """The weighted inversion count behind tau-b against the sum over every pair (i < j, r_i > r_j)."""
    from servetrace.stats.correlation import weighted_inversions

    rng = np.random.default_rng(levels)
    for m in (1, 2, 5, 300):
        r = rng.integers(0, levels, m)
        w = rng.integers(1, 1_000_000, m)
        i, j = np.triu_indices(m, 1)
        want = int((w[i] * w[j] * (r[i] > r[j])).sum())
        assert weighted_inversions(r, w) == want
