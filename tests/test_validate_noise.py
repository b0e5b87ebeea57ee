"""The arrival checks' noise floors (validation/noise.py): half to half from the source alone, seed
to seed from two more seeds of the bundle, each against a computation by hand, and whether a
check's value lies within them."""

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


def test_the_seed_to_seed_floor_is_two_more_seeds_of_the_bundle(run_dir, tmp_path):
    d, b = run_dir
    result = validate_traces(d, d / "syn.parquet", tmp_path / "out", page=False)
    assert result["inputs"]["bundle"] == str(d / "bundle.json")
    x, y = (generate_table(b, GenerateOptions(seed=s))[0]["arrival_s"].to_numpy() for s in FidelitySettings().floor_seeds)
    lo = np.ceil(max(x.min(), y.min()) / 600) * 600
    hi = np.floor(min(x.max(), y.max()) / 600) * 600
    xs, ys = x[(x >= lo) & (x < hi)], y[(y >= lo) & (y < hi)]
    for s in (1, 10, 60):
        want = abs(m.idc(ys, s, (lo, hi)) - m.idc(xs, s, (lo, hi))) / m.idc(xs, s, (lo, hi))
        assert result["checks"][f"idc_{s}"]["noise_floor"]["seed_to_seed"] == pytest.approx(want, rel=1e-9)
    assert result["checks"]["iat_cv"]["noise_floor"]["seed_to_seed"] == pytest.approx(
        abs(m.iat_cv(ys) - m.iat_cv(xs)) / m.iat_cv(xs), rel=1e-9)
    counts = [np.histogram(t, bins=np.arange(0, 8 * 600 + 1, 600))[0] for t in (x, y)]
    covered = np.minimum(np.arange(1, 9) * 600, min(x.max(), y.max())) - np.maximum(np.arange(8) * 600, max(x.min(), y.min()))
    keep = covered >= 300
    rx, ry = counts[0][keep] / covered[keep], counts[1][keep] / covered[keep]
    assert result["checks"]["rate_mape"]["noise_floor"]["seed_to_seed"] == pytest.approx(
        np.mean(np.abs(ry - rx) / rx), rel=1e-9)


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
