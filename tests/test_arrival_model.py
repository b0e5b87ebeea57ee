"""The multi-scale rate modulation: its estimator recovers planted parameters, generation makes
the dispersion it was fitted to, and a bundle's arrival model is chosen by evidence."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from servetrace.bundle import validate_bundle
from servetrace.bundle.arrival_model import choose, covered_counts
from servetrace.bundle.modulation import fit_modulation, model_dispersion, observed_dispersion
from servetrace.settings import ModulationSettings
from servetrace.generation import GenerateOptions, generate_table
from servetrace.generation.modulation import Modulation
from servetrace.stats import fidelity as m
from test_generate import W, bundle, client

BIN_S, THETAS = ModulationSettings().bin_s, ModulationSettings().theta_s


def cox_poisson(sigma2, rate: float, windows: int, seed: int) -> np.ndarray:
    """A Poisson process of constant `rate` in the time the planted modulation integrates to."""
    mod = Modulation({"theta_s": list(THETAS), "sigma2": list(sigma2), "bin_s": BIN_S}, seed, 0.0, W)
    t, u = mod.knots(0.0, windows * W, 0)
    rng = np.random.default_rng(seed + 1000)
    points = np.sort(rng.uniform(0, u[-1], rng.poisson(rate * u[-1])))
    return np.interp(points, u, t)


def bin_counts(t: np.ndarray, windows: int) -> np.ndarray:
    n = int(windows * W / BIN_S)
    return np.bincount((t // BIN_S).astype(np.int64), minlength=n)[:n]


@pytest.mark.parametrize("sigma2,rate", [((0.8, 0.0, 0.4, 0.0), 3.0), ((0.0, 0.5, 0.0, 0.3), 5.0)])
@pytest.mark.parametrize("seed", [0, 1])
def test_the_estimator_recovers_planted_variances(sigma2, rate, seed):
    """24 windows simulated with known component variances: the dominant component comes back
    within 0.15 and the total within 20 % (neighbouring time scales trade variance)."""
    t = cox_poisson(sigma2, rate, 24, seed)
    fit = fit_modulation(bin_counts(t, 24), BIN_S, W)
    got, want = np.asarray(fit["sigma2"]), np.asarray(sigma2)
    top = int(np.argmax(want))
    assert got[top] == pytest.approx(want[top], abs=0.15)
    assert got.sum() == pytest.approx(want.sum(), rel=0.2)
    assert fit["fit"]["rms_log_error"] < 0.05


def test_a_poisson_process_gets_no_modulation():
    rng = np.random.default_rng(3)
    t = np.sort(rng.uniform(0, 24 * W, rng.poisson(10 * 24 * W)))
    fit = fit_modulation(bin_counts(t, 24), BIN_S, W)
    assert sum(fit["sigma2"]) < 0.01
    taus, d, r_eff = observed_dispersion(bin_counts(t, 24), BIN_S, W)
    np.testing.assert_allclose(d[:8], model_dispersion(np.zeros(4), taus, W, r_eff)[:8], atol=0.06)  # 1 - 1/m


def test_modulation_keeps_each_window_count_and_is_the_same_whatever_the_blocks():
    spec = {"theta_s": list(THETAS), "sigma2": [0.5, 0.3, 0.2, 0.1], "bin_s": BIN_S}
    one = Modulation(spec, 4, 0.0, W)
    t, u = one.knots(0.0, 3 * W, 0)
    np.testing.assert_allclose(np.interp([W, 2 * W, 3 * W], t, u), [W, 2 * W, 3 * W])  # mean 1 per window
    two = Modulation(spec, 4, 0.0, W)
    t1, u1 = two.knots(0.0, 1.5 * W, 0)
    t2, u2 = two.knots(1.5 * W, 3 * W, 1)  # the next block reuses the window it shares with the first
    shared = t2 <= 2 * W
    np.testing.assert_allclose(np.interp(t2[shared], t, u) - np.interp(1.5 * W, t, u), u2[shared], atol=1e-9)
    assert np.interp(3 * W, t2, u2) == pytest.approx(np.interp(2 * W, t2, u2) + W)  # a later window: mean 1


def planted_cox_bundle(sigma2) -> dict:
    b = bundle([client("a", 4.0, 12)], 12)
    b["arrival_model"] = {"chosen": "cox", "modulation": {"kind": "log-gaussian OU", "theta_s": list(THETAS),
                                                          "sigma2": list(sigma2), "bin_s": BIN_S},
                          "candidates": {}}
    return validate_bundle(b)


def test_generation_makes_the_dispersion_it_was_fitted_to():
    """A bundle with a planted modulation generates a trace whose fitted modulation and IDC match:
    IDC at 10 s about 1 + r I(10) / 10 from the model, far above the renewal model's 1."""
    sigma2 = (0.6, 0.4, 0.0, 0.0)
    t = generate_table(planted_cox_bundle(sigma2), GenerateOptions(seed=2))[0]["arrival_s"].to_numpy()
    fit = fit_modulation(bin_counts(t, 12), BIN_S, W)
    assert sum(fit["sigma2"]) == pytest.approx(1.0, rel=0.25)
    plain = generate_table(bundle([client("a", 4.0, 12)], 12), GenerateOptions(seed=2))[0]["arrival_s"].to_numpy()
    assert m.idc(plain, 10) == pytest.approx(1.0, abs=0.2)
    taus, d, r_eff = observed_dispersion(bin_counts(t, 12), BIN_S, W)
    model = model_dispersion(np.asarray(sigma2), taus, W, r_eff)
    assert d[taus == 10][0] == pytest.approx(model[taus == 10][0], rel=0.25)
    assert m.idc(t, 10) > 5 * m.idc(plain, 10)


def test_the_model_is_chosen_by_evidence():
    """A source made by the Cox model: a Cox candidate wins and cuts the renewal model's IDC error;
    a renewal source (Gamma CV 2 per window, no modulation) gets a near-zero modulation."""
    source = generate_table(planted_cox_bundle((0.6, 0.4, 0.2, 0.0)), GenerateOptions(seed=9))[0]
    b = bundle([client("a", 4.0, 12)], 12)
    t = source["arrival_s"].to_numpy()
    counts = covered_counts(*np.unique((t // BIN_S).astype(np.int64), return_counts=True), b)
    model = choose(t, counts, b)
    ev = model["candidates"]
    assert model["chosen"] in ("cox", "cox-renewal")
    assert ev[model["chosen"]]["idc_error_mean"] < 0.5 * ev["renewal"]["idc_error_mean"]
    validate_bundle({**b, "arrival_model": model})
    # a renewal source (Gamma CV 2 per window): its own model fits it; the modulation fitted to its
    # short-scale dispersion, added on top of the renewal (cox-renewal), counts it twice and loses
    gamma = bundle([client("a", 4.0, 12, cv=2.0)], 12)
    r = generate_table(gamma, GenerateOptions(seed=9))[0]["arrival_s"].to_numpy()
    model = choose(r, covered_counts(*np.unique((r // BIN_S).astype(np.int64), return_counts=True), gamma), gamma)
    ev = model["candidates"]
    assert model["scored_scales_s"] == [1.0, 10.0, 60.0]  # 12 bins of 600 s: too few to score
    assert ev["renewal"]["idc_error"]["1"] < 0.1 and ev["renewal"]["idc_error"]["10"] < 0.1
    assert ev["cox-renewal"]["idc_error_mean"] > 2 * ev["renewal"]["idc_error_mean"]
    assert model["chosen"] != "cox-renewal"


def test_older_bundles_without_an_arrival_model_still_load_and_generate_renewals():
    b = bundle([client("a", 2.0, 2)], 2)
    assert "arrival_model" not in b
    df = pl.from_arrow(generate_table(validate_bundle(b), GenerateOptions(seed=1))[0])
    assert df.height == pytest.approx(2400, abs=4 * np.sqrt(2400))


def test_whole_second_timestamps_are_fitted_above_their_resolution():
    """BurstGPT writes whole seconds: every request of a second lands in its first quarter-second
    bin. Fitted from bins of >= 2 s, a planted slow modulation comes back; fitted from every bin,
    the rounding shows up as a variance at the 1 s scale that was never planted."""
    sigma2 = (0.0, 0.5, 0.3, 0.0)
    t = np.floor(cox_poisson(sigma2, 5.0, 24, seed=4))
    counts = bin_counts(t, 24)
    fit = fit_modulation(counts, BIN_S, W, resolution_s=1.0)
    assert all(tau >= 2.0 for tau in fit["fit"]["tau_s"])
    got = np.asarray(fit["sigma2"])
    assert got[0] < 0.1 and got.sum() == pytest.approx(sum(sigma2), rel=0.25)
    naive = fit_modulation(counts, BIN_S, W)
    assert naive["sigma2"][0] > 0.3  # the rounding's dispersion read as a 1 s component


def test_a_modulated_model_must_beat_renewal_beyond_its_seed_floor():
    from servetrace.bundle.arrival_model import simplest_within_noise

    def ev(score, floor):
        return {"score": score, "idc_seed_floor": {"1": floor, "10": floor, "600": None}}

    scored = ["1", "10"]
    assert simplest_within_noise({"renewal": ev(0.6, 0.1), "cox": ev(0.52, 0.1)}, scored) == "renewal"
    assert simplest_within_noise({"renewal": ev(0.6, 0.1), "cox": ev(0.45, 0.1), "cox-renewal": ev(0.48, 0.0)}, scored) == "cox"
    assert simplest_within_noise({"renewal": ev(0.3, 0.5), "cox": ev(0.4, 0.0)}, scored) == "renewal"
    # renewal's own floor counts too: one pair of traces can read a small floor by chance
    assert simplest_within_noise({"renewal": ev(0.6, 0.2), "cox": ev(0.45, 0.02)}, scored) == "renewal"
    assert simplest_within_noise({"cox": ev(0.4, 0.0), "cox-renewal": ev(0.3, 0.2)}, ["1"]) == "cox-renewal"


@pytest.mark.parametrize("chosen", ["renewal", "cox", "cox-renewal"])
def test_arrival_times_are_the_generated_tables_arrivals(chosen):
    """The candidates are scored on `arrival_times()`, which skips lengths and failures: the
    same arrivals as the generated table's, bit for bit, with blocks of a few hundred rows."""
    from servetrace.generation.compose import prepare

    b = planted_cox_bundle((0.5, 0.2, 0.1, 0.05))
    b["arrival_model"]["chosen"] = chosen
    for seed in (1, 2):
        options = GenerateOptions(seed=seed)
        table = generate_table(b, options)[0]
        got = prepare(b, options, block_rows=500).arrival_times()
        want = prepare(b, options, block_rows=500)
        want = np.concatenate([blk["arrival_s"].to_numpy() for blk in want.blocks()])
        assert want.size > 2000
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(prepare(b, options).arrival_times(), table["arrival_s"].to_numpy())


def test_scores_from_figures_equal_scores_from_arrivals():
    """A candidate's figures computed once and compared many times give what comparing the raw
    arrivals gives: the IDC and the KS distance (scipy's two-sample statistic, ties included)."""
    from scipy import stats

    from servetrace.bundle.arrival_model import Figures, score

    rng = np.random.default_rng(5)
    a = np.sort(np.floor(rng.uniform(0, 5000, 20000)))  # a whole-second clock: most gaps tie
    b = np.sort(np.floor(rng.exponential(0.25, 20000).cumsum()))
    got = score(Figures(a, (1.0, 10.0)), Figures(b, (1.0, 10.0)), (1.0, 10.0))
    assert got == score(a, b, (1.0, 10.0))
    assert got["iat_ks"] == pytest.approx(stats.ks_2samp(np.diff(a), np.diff(b)).statistic, abs=1e-12)
    for s in (1.0, 10.0):
        n = int((a[-1] - a[0]) // s)
        counts = np.bincount(((a - a[0]) // s).astype(np.int64), minlength=n)[:n]
        assert m.idc(a, s) == pytest.approx(counts.var() / counts.mean(), rel=1e-12)


def _on_clock_source(rate: float, windows: int, seed: int) -> tuple[dict, np.ndarray, np.ndarray]:
    """A Poisson source of `rate` written by a whole-second clock, its bundle and modulation bin counts."""
    b = bundle([client("a", rate, windows)], windows)
    t = np.floor(generate_table(b, GenerateOptions(seed=seed))[0]["arrival_s"].to_numpy())
    counts = covered_counts(*np.unique((t // BIN_S).astype(np.int64), return_counts=True), b)
    return b, t, counts


def test_a_clock_too_coarse_for_the_gaps_leaves_the_candidates_ks_absent():
    """150 req/s on a 1 s clock: every gap is 0 or 1 s, so the inter-arrival ECDF has one step, the
    tie share, which every candidate matches by its window rates (KS ~1e-5 whatever its process).
    The KS is absent with its reason and scores nothing: each score is the IDC-curve error alone.
    At 0.5 req/s the same clock shows gaps of many lengths, and the KS is the two traces' distance."""
    from servetrace.bundle.arrival_finding import arrival_model_finding

    b, t, counts = _on_clock_source(150.0, 2, seed=3)
    gaps = np.diff(t)
    assert set(np.unique(gaps)) == {0.0, 1.0}  # the planted case: ties and 1 s steps only
    model = choose(t, counts, b)
    assert model["source"]["clock_s"] == 1.0
    for name, ev in model["candidates"].items():
        reason = ev["iat_ks"]["absent"]
        assert "only 2 distinct values" in reason and f"{np.mean(gaps == 0):.1%} ties" in reason
        assert ev["score"] == ev["idc_error_mean"]
    validate_bundle({**b, "arrival_model": model})
    found = arrival_model_finding(model)
    assert "KS absent" in found["statement"] and "only 2 distinct values" in found["statement"]

    b, t, counts = _on_clock_source(0.5, 4, seed=3)
    assert len(np.unique(np.diff(t))) > 5
    model = choose(t, counts, b)
    for ev in model["candidates"].values():
        assert isinstance(ev["iat_ks"], float) and 0 < ev["iat_ks"] < 0.2
        assert ev["score"] == pytest.approx(ev["idc_error_mean"] + ev["iat_ks"], rel=1e-12)


def test_the_inter_arrival_ks_is_computed_only_where_it_scores(monkeypatch):
    """The KS of each candidate trace against the source is computed where the clock lets it tell
    candidates apart (once per candidate and seed), never for an untestable clock, nor for the
    seed-to-seed floor (which keeps the IDC errors only)."""
    from servetrace.settings import ArrivalModelSettings

    calls = []
    ks_sorted = m.ks_sorted
    monkeypatch.setattr(m, "ks_sorted", lambda a, b: calls.append(len(b)) or ks_sorted(a, b))
    t_ = ArrivalModelSettings()
    b, t, counts = _on_clock_source(150.0, 2, seed=3)
    model = choose(t, counts, b)
    assert calls == [] and all("absent" in ev["iat_ks"] for ev in model["candidates"].values())
    b, t, counts = _on_clock_source(0.5, 4, seed=3)
    model = choose(t, counts, b)
    assert len(calls) == len(t_.seeds) * len(model["candidates"]) and len(model["candidates"]) > 1
    assert all(set(ev["idc_seed_floor"]) == {str(int(s)) for s in t_.scales_s} for ev in model["candidates"].values())


def test_ks_untestable_counts_the_clocks_steps():
    from servetrace.bundle.arrival_model import ks_untestable

    assert ks_untestable(np.array([0.0, 0.0, 1.0]), 1.0).startswith("the 1 s clock shows the source's gaps as only 2")
    assert ks_untestable(np.array([0.0, 0.0, 0.0]), 1.0) is not None  # one value: nothing to compare
    assert ks_untestable(np.array([0.0, 1.0, 2.0]), 1.0) is None  # an empty tick between arrivals: testable
    assert ks_untestable(np.array([0.0, 0.1, 0.1 + 1e-12]) * 3, 0.1) is not None  # on a 0.1 s grid, float noise aside
    assert ks_untestable(np.array([0.0, 1.0]), None) is None  # no coarse clock


def test_the_seeds_side_by_side_choose_what_they_choose_one_after_another(monkeypatch):
    """The candidates' seeds are generated and scored on threads of their own (each with its own
    work arrays and shared draws): the evidence is the same, number for number, as one seed after
    the other on the calling thread."""
    import servetrace.bundle.arrival_model as am

    source = generate_table(planted_cox_bundle((0.6, 0.4, 0.2, 0.0)), GenerateOptions(seed=9))[0]
    b = bundle([client("a", 4.0, 12)], 12)
    t = source["arrival_s"].to_numpy()
    counts = covered_counts(*np.unique((t // BIN_S).astype(np.int64), return_counts=True), b)
    threads = []
    pool = am.ThreadPoolExecutor

    class Counted(pool):
        def __init__(self, workers):
            threads.append(workers)
            super().__init__(workers)

    monkeypatch.setattr(am, "ThreadPoolExecutor", Counted)
    side_by_side = choose(t, counts, b)

    class InTurn:
        def __init__(self, workers):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def map(self, f, items):
            return [f(x) for x in items]

    monkeypatch.setattr(am, "ThreadPoolExecutor", InTurn)
    assert threads == [2] and len(side_by_side["candidates"]) == 3  # two seeds at once; cox candidates share draws
    assert choose(t, counts, b) == side_by_side
