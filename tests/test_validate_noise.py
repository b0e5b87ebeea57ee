"""The arrival and length checks' noise floors (validation/noise.py): half to half from the source
alone, seed to seed the largest over the pairs of three more seeds of the bundle, each against a
computation by hand, and whether a check's value lies within them."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from servetrace.bundle import load_bundle, save_bundle
from servetrace.generation import GenerateOptions, generate_table
from servetrace.generation.table import canonical_table
from servetrace.io import write_parquet
from servetrace.stats import fidelity as m
from servetrace.validation import fidelity, validate_traces
from servetrace.settings import FidelitySettings
from test_generate import bundle, client
from test_validate import trace
from tests.conftest import run_cli

ARRIVAL = ("rate_mape", "iat_cv", "idc_1", "idc_10", "idc_60", "idc_600")


def frame(t: np.ndarray) -> pl.DataFrame:
    n = len(t)
    return pl.from_arrow(canonical_table({"arrival_s": np.sort(t), "input_tokens": np.full(n, 100, np.int32),
                                          "output_tokens": np.full(n, 10, np.int32)}))


def test_a_source_whose_halves_are_equal_has_a_zero_half_to_half_floor():
    """Six windows, the last three a copy of the first three: IAT CV and IDC of the halves are
    equal; the rate floor compares each window's two halves, counted here window by window."""
    rng = np.random.default_rng(1)
    half = np.r_[0.0, np.sort(rng.gamma(0.2, 1 / (4 * 0.2), 20_000).cumsum() % 1800)]
    src = np.r_[half, half + 1800, 3600.0]
    f, _ = fidelity(frame(src), frame(src))
    floors = {k: f["checks"][k]["noise_floor"]["half_to_half"] for k in ARRIVAL}
    for k in ARRIVAL[1:]:
        assert floors[k] == pytest.approx(0.0, abs=1e-12), k
    apes = []
    for w in range(6):
        first = ((src >= w * 600) & (src < w * 600 + 300)).sum()
        second = ((src >= w * 600 + 300) & (src < (w + 1) * 600)).sum()
        apes.append(abs(second - first) / first)
    assert floors["rate_mape"] == pytest.approx(np.mean(apes), rel=1e-12)
    assert all(f["checks"][k]["noise_floor"]["seed_to_seed"] is None for k in ARRIVAL)  # no bundle given


def test_the_half_to_half_floor_compares_the_first_half_with_the_second():
    src = trace(cv=3.0, n=80_000)["arrival_s"].to_numpy()  # ~4000 s: whole windows 600 .. 3600, five
    assert 3600 < src.max() < 4200
    f, _ = fidelity(frame(src), frame(src))
    a, b = src[(src >= 600) & (src < 1800)], src[(src >= 1800) & (src < 3000)] - 1200  # the fifth is left out
    span = (600.0, 1800.0)
    got = f["checks"]["idc_10"]["noise_floor"]["half_to_half"]
    assert got == pytest.approx(abs(m.idc(b, 10, span) - m.idc(a, 10, span)) / m.idc(a, 10, span), rel=1e-9)
    assert f["checks"]["iat_cv"]["noise_floor"]["half_to_half"] == pytest.approx(
        abs(m.iat_cv(b) - m.iat_cv(a)) / m.iat_cv(a), rel=1e-9)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """An output directory: a bundle (two clients, bursty and smooth, 8 windows) and a source made from it."""
    d = tmp_path_factory.mktemp("run")
    b = bundle([client("a", 6.0, 8, cv=3.0, share=0.75), client("b", 2.0, 8, share=0.25)], 8)
    save_bundle(d / "bundle.json", b)
    b = load_bundle(d / "bundle.json")  # as written (numbers rounded), as validate reads it
    write_parquet(d / "requests.parquet", generate_table(b, GenerateOptions(seed=1))[0])
    write_parquet(d / "syn.parquet", generate_table(b, GenerateOptions(seed=2))[0])
    return d, b


def _arrival_floors(x: np.ndarray, y: np.ndarray) -> dict:
    """The arrival checks' values of y against x, by hand (the run's 8 windows of 600 s)."""
    lo = np.ceil(max(x.min(), y.min()) / 600) * 600
    hi = np.floor(min(x.max(), y.max()) / 600) * 600
    xs, ys = x[(x >= lo) & (x < hi)], y[(y >= lo) & (y < hi)]
    out = {f"idc_{s}": abs(m.idc(ys, s, (lo, hi)) - m.idc(xs, s, (lo, hi))) / m.idc(xs, s, (lo, hi)) for s in (1, 10, 60)}
    out["iat_cv"] = abs(m.iat_cv(ys) - m.iat_cv(xs)) / m.iat_cv(xs)
    counts = [np.histogram(t, bins=np.arange(0, 8 * 600 + 1, 600))[0] for t in (x, y)]
    covered = np.minimum(np.arange(1, 9) * 600, min(x.max(), y.max())) - np.maximum(np.arange(8) * 600, max(x.min(), y.min()))
    keep = covered >= 300
    rx, ry = counts[0][keep] / covered[keep], counts[1][keep] / covered[keep]
    out["rate_mape"] = np.mean(np.abs(ry - rx) / rx)
    return out


def test_the_seed_to_seed_floor_is_the_largest_over_pairs_of_three_more_seeds(run_dir, tmp_path):
    """Three floor seeds, three pairs: each check's seed-to-seed floor is the largest of its three
    values, computed here pair by pair (arrival checks by hand, lengths by scipy's KS and
    Spearman); the length checks' half-to-half floor compares the source's rows split by a hash."""
    from itertools import combinations

    from scipy import stats

    d, b = run_dir
    result = validate_traces(d, d / "requests.parquet", tmp_path / "out", page=False)
    assert result["inputs"]["bundle"] == str(d / "bundle.json")
    seeds = FidelitySettings().floor_seeds
    assert len(seeds) == 3
    tables = [generate_table(b, GenerateOptions(seed=s))[0] for s in seeds]
    pairs = [_arrival_floors(x["arrival_s"].to_numpy(), y["arrival_s"].to_numpy()) for x, y in combinations(tables, 2)]
    for k in ("idc_1", "idc_10", "idc_60", "iat_cv", "rate_mape"):
        assert result["checks"][k]["noise_floor"]["seed_to_seed"] == pytest.approx(max(p[k] for p in pairs), rel=1e-9), k
    assert len({round(p["iat_cv"], 12) for p in pairs}) == 3  # three different pairs: the max is a choice
    rho = lambda t: stats.spearmanr(t["input_tokens"], t["output_tokens"]).statistic
    for name in ("input", "output"):
        want = max(stats.ks_2samp(x[f"{name}_tokens"], y[f"{name}_tokens"]).statistic for x, y in combinations(tables, 2))
        assert result["checks"][f"ks_{name}"]["noise_floor"]["seed_to_seed"] == pytest.approx(want, rel=1e-9)
    want = max(abs(rho(x) - rho(y)) for x, y in combinations(tables, 2))
    check = result["checks"]["spearman_input_output"]
    assert check["noise_floor"]["seed_to_seed"] == pytest.approx(want, rel=1e-9)
    src = pl.read_parquet(d / "requests.parquet")
    odd = src.select((pl.int_range(pl.len(), dtype=pl.UInt64).hash(seed=0) % 2 == 1).alias("o"))["o"]
    a, c = src.filter(~odd), src.filter(odd)
    assert 0.4 < len(a) / len(src) < 0.6
    assert result["checks"]["ks_input"]["noise_floor"]["half_to_half"] == pytest.approx(
        stats.ks_2samp(a["input_tokens"], c["input_tokens"]).statistic, rel=1e-9)
    assert check["noise_floor"]["half_to_half"] == pytest.approx(abs(rho(a) - rho(c)), rel=1e-9)
    assert check["value"] == 0 and check["within_noise"] is True  # the source against itself


def test_a_check_is_within_noise_only_up_to_its_larger_floor(run_dir, tmp_path):
    d, _ = run_dir
    same = validate_traces(d, d / "requests.parquet", tmp_path / "same", page=False)
    for k in ARRIVAL[:-1]:
        c = same["checks"][k]
        assert c["value"] == 0 and c["within_noise"] is True
    # Poisson arrivals for a trace whose busiest client has gaps of CV 3: the IDC miss is far beyond noise
    src = pl.read_parquet(d / "requests.parquet")
    t = src["arrival_s"].to_numpy()
    poisson = np.sort(np.random.default_rng(3).uniform(t.min(), t.max(), len(t)))
    write_parquet(tmp_path / "poisson.parquet", src.with_columns(pl.Series("arrival_s", poisson)).to_arrow())
    out = run_cli("validate", d, tmp_path / "poisson.parquet", "--out", tmp_path / "p", "--bundle", d / "bundle.json",
                  "--no-page")
    assert out.returncode == 0 and "fail: " in out.stdout and "beyond noise" in out.stdout
    saved = json.loads((tmp_path / "p" / "fidelity.json").read_text())
    c = saved["checks"]["idc_10"]
    assert c["pass"] is False and c["within_noise"] is False
    assert c["value"] > 3 * max(c["noise_floor"].values())


def test_a_bundle_that_is_not_there_is_a_one_line_error(run_dir, tmp_path):
    d, _ = run_dir
    out = run_cli("validate", d, d / "syn.parquet", "--out", tmp_path / "o", "--bundle", tmp_path / "none.json")
    assert out.returncode != 0 and "no bundle.json there" in out.stderr and "Traceback" not in out.stderr
