"""The inter-arrival KS distance the arrivals finding reports, against scipy on planted gaps.

Gaps are drawn from known families (exponential, gamma of CV 2, Weibull, lognormal), as they are
and as a whole-second clock shows them. The reported KS must be scipy's on the same data: the
continuous statistic (scipy.stats.kstest) on exact gaps; on rounded gaps, the distance between
the ECDF of the gaps as seen and the family seen through the same grid, each step's probability
integrated by scipy.integrate. The true family sits near the sampling noise floor, a wrong one
far above it. A clock too coarse for the gaps (all of them 0 or 1 s) cannot test any family: its
KS is absent, not the ~1e-9 a one-parameter fit reaches by matching the tie share.
"""

import math

import numpy as np
import pytest
from scipy import integrate, stats

from servetrace.stages import arrivals
from servetrace.stats import rounded
from test_stages_support import canonical, run_stages

N = 40_000
MEAN_S = 5.0
TRUTHS = {  # family -> scipy distribution of mean MEAN_S
    "exponential": stats.expon(scale=MEAN_S),
    "gamma": stats.gamma(0.25, scale=MEAN_S / 0.25),  # CV 2
    "weibull": stats.weibull_min(0.7, scale=MEAN_S / math.gamma(1 + 1 / 0.7)),
    "lognormal": stats.lognorm(1.0, scale=MEAN_S * math.exp(-0.5)),
}
WRONG = {"exponential": "lognormal", "gamma": "exponential", "weibull": "exponential", "lognormal": "exponential"}
NOISE = 1.63 / math.sqrt(N)  # the KS distance's 99 % point for n gaps and known parameters (estimated: smaller)


def scipy_dist(family: str, params: dict):
    if family == "exponential":
        return stats.expon(scale=params["scale"])
    if family == "gamma":
        return stats.gamma(params["shape"], scale=params["scale"])
    if family == "weibull":
        return stats.weibull_min(params["shape"], scale=params["scale"])
    return stats.lognorm(params["sigma"], scale=math.exp(params["mu"]))


def grid_ks(gaps: np.ndarray, dist, delta: float = 1.0) -> float:
    """KS between gaps seen on a grid and `dist` seen through it: a gap x between two instants
    each rounded down to the grid (uniform phase) is seen as k steps with P(seen <= k) =
    integral over [k, k+1] of F(delta u) du; the data and that CDF both step at the grid values."""
    k, counts = np.unique(np.rint(gaps / delta), return_counts=True)
    ecdf_after = np.cumsum(counts) / counts.sum()
    ecdf_before = ecdf_after - counts / counts.sum()
    h = integrate.quad_vec(lambda u: dist.cdf((k + u) * delta), 0.0, 1.0, epsabs=1e-13, epsrel=1e-12)[0]
    h_before = np.where(k >= 1, integrate.quad_vec(lambda u: dist.cdf(np.maximum(k - 1 + u, 0) * delta),
                                                    0.0, 1.0, epsabs=1e-13, epsrel=1e-12)[0], 0.0)
    return float(max(np.max(np.abs(ecdf_after - h)), np.max(np.abs(h_before - ecdf_before))))


def planted(family: str, seed: int) -> np.ndarray:
    return TRUTHS[family].rvs(N, random_state=np.random.default_rng(seed))


@pytest.mark.parametrize("truth", list(TRUTHS))
def test_exact_gaps_ks_is_scipys_kstest(truth):
    gaps = planted(truth, seed=1)
    best, fits, _ = arrivals.overall_fit(gaps, None)
    assert best["grid_s"] is None and set(fits) == set(TRUTHS)
    for family, fit in fits.items():
        params = {k: float(v[0]) for k, v in fit["params"].items()}
        want = stats.kstest(gaps, scipy_dist(family, params).cdf).statistic
        assert fit["ks"][0] == pytest.approx(want, rel=1e-9, abs=1e-12), family
    assert fits[truth]["ks"][0] < NOISE
    assert fits[WRONG[truth]]["ks"][0] > 5 * NOISE
    assert best["family"] == truth and best["fits"] is True


@pytest.mark.parametrize("truth", list(TRUTHS))
def test_whole_second_gaps_ks_is_the_grid_ks(truth):
    """Arrivals at the planted gaps, timestamps floored to whole seconds (5 % to 42 % of the gaps
    become ties, 46 to 111 distinct values): the fit and its KS see each gap as the grid shows it."""
    t = 1000.0 + np.cumsum(planted(truth, seed=2))
    seen = np.diff(np.floor(t))
    assert 0.04 < (seen == 0).mean() < 0.5
    best, fits, _ = arrivals.overall_fit(seen, 1.0)
    assert best["grid_s"] == 1.0 and set(fits) == set(TRUTHS)
    for family, fit in fits.items():
        params = {k: float(v[0]) for k, v in fit["params"].items()}
        assert "ks_absent" not in fit
        assert fit["ks"][0] == pytest.approx(grid_ks(seen, scipy_dist(family, params)), abs=1e-9), family
    # the continuous statistic on the rounded gaps is the wrong comparison: ties alone put it far off
    truth_params = {k: float(v[0]) for k, v in fits[truth]["params"].items()}
    assert stats.kstest(seen, scipy_dist(truth, truth_params).cdf).statistic > 10 * NOISE
    assert fits[truth]["ks"][0] < NOISE
    assert fits[WRONG[truth]]["ks"][0] > 5 * NOISE
    assert best["family"] == truth and best["fits"] is True


@pytest.mark.parametrize("truth", ["exponential", "gamma"])
def test_a_clock_coarser_than_the_gaps_tests_no_family(truth):
    """150 req/s on a 1 s clock: every gap is seen as 0 or 1 s. The grid KS of each fit is ~1e-9
    whether the arrivals are Poisson or gamma renewal of CV 2 (the one ECDF step, the tie share, is
    matched by any fit), so it is reported absent, with the reason, and `fits` with it."""
    gaps = TRUTHS[truth].rvs(300_000, random_state=np.random.default_rng(3)) / (150 * MEAN_S)
    seen = np.diff(np.floor(np.cumsum(gaps)))
    assert set(np.unique(seen)) == {0.0, 1.0}
    best, fits, _ = arrivals.overall_fit(seen, 1.0)
    for family, fit in fits.items():
        params = {k: float(v[0]) for k, v in fit["params"].items()}
        assert grid_ks(seen, scipy_dist(family, params)) < 1e-6  # by construction, not by fit
        assert np.isnan(fit["ks"][0]) and "2 distinct value" in fit["ks_absent"]
    assert best["family"] == "exponential"  # BIC over all: the one parameter the data can tell
    assert set(best["ks"]) == {"absent"} and best["fits"] == best["ks"]
    assert "99." in best["ks"]["absent"] and "ties" in best["ks"]["absent"]


def test_a_family_is_tested_only_with_more_grid_values_than_parameters():
    r = rounded.Rounded(np.repeat([0.0, 1.0, 2.0], [900, 90, 10]), 1.0)
    assert r.levels == 3
    assert r.untestable("exponential") is None  # two ECDF steps, one parameter
    assert all(r.untestable(f) for f in ("gamma", "weibull", "lognormal"))  # two steps, two parameters
    assert rounded.Rounded(np.repeat([0.0, 1.0, 2.0, 4.0], [900, 90, 9, 1]), 1.0).untestable("gamma") is None


def test_the_grid_ks_evaluates_each_grid_step_once_and_equals_the_per_gap_computation():
    """Rounded.ks evaluates the observed CDF once per distinct grid step and gathers it per gap: the
    same KS distance, bit for bit, as the observed CDF at every gap (k and k - 1)."""
    from servetrace.stats import families

    rng = np.random.default_rng(7)
    for x, delta in ((np.round(rng.gamma(0.6, 2.0, 50_000), 3), 0.001), (np.round(rng.exponential(3.0, 20_000)), 1.0)):
        r = rounded.Rounded(x, delta)
        assert r.levels == len(np.unique(r.k)) and np.array_equal(r.steps[r.step_of], r.k)
        for family, p in (("gamma", {"shape": 0.7, "scale": 2.0}), ("weibull", {"shape": 0.8, "scale": 1.5}),
                          ("lognormal", {"mu": 0.1, "sigma": 1.2}), ("exponential", {"scale": 2.0})):
            hi, lo = (rounded.observed_cdf_exact(family, p, k, delta) for k in (r.k, r.k - 1))
            assert r.ks(family, p) == float(families.ks_distance(r.x[None, :], (hi[None, :], lo[None, :]))[0])


def test_the_finding_says_the_family_cannot_be_tested(tmp_path):
    rng = np.random.default_rng(4)
    t = np.floor(np.sort(rng.uniform(0, 2000, 300_000)))
    findings, _ = run_stages(tmp_path, canonical(t))
    a = findings["arrivals"]
    assert "absent" in a["best_fit"]["ks"] and "absent" in a["best_fit"]["fits"]
    assert all("absent" in f["ks"] for f in a["fits"].values())
    assert "the gaps' family cannot be tested (exponential by BIC): the 1 s grid shows the gaps as only 2" in a["statement"]
    assert "fits best" not in a["statement"]
