"""The default trace (`servetrace generate` of the committed bundle): schema, reproducibility, and
the phenomena it must show."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats

from conftest import run_cli
from servetrace.io import sha256_file

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "samples" / "burstgpt_sample.csv"
BUNDLE = REPO / "data" / "samples" / "burstgpt_sample.bundle.json"
HEADER = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type"


@pytest.fixture(scope="module")
def trace() -> pl.DataFrame:
    return pl.read_csv(SAMPLE)


def _hour_counts(ts: np.ndarray) -> np.ndarray:
    return np.bincount((ts % 86400) // 3600, minlength=24)


def _window_cvs(ts: np.ndarray, min_gaps: int = 20) -> np.ndarray:
    """Inter-arrival CV within each 600 s window that has at least `min_gaps` gaps."""
    w = ts // 600
    gaps, same = np.diff(ts).astype(float), w[1:] == w[:-1]
    g = pl.DataFrame({"w": w[1:][same], "gap": gaps[same]}).group_by("w").agg(
        pl.col("gap").std(ddof=0).alias("sd"), pl.col("gap").mean().alias("mean"), pl.len().alias("n"))
    g = g.filter(pl.col("n") >= min_gaps)
    return (g["sd"] / g["mean"]).to_numpy()


def test_header_and_schema_are_burstgpt_v1(trace):
    assert SAMPLE.read_text().split("\n", 1)[0] == HEADER
    assert trace.columns == HEADER.split(",")
    assert all(trace[c].dtype == pl.Int64 for c in ("Timestamp", "Request tokens", "Response tokens", "Total tokens"))
    assert set(trace["Model"].unique()) == {"ChatGPT", "GPT-4"}
    assert set(trace["Log Type"].unique()) == {"Conversation log", "API log"}
    assert (trace["Total tokens"] == trace["Request tokens"] + trace["Response tokens"]).all()
    assert (trace["Request tokens"] >= 1).all() and (trace["Response tokens"] >= 0).all()
    ts = trace["Timestamp"].to_numpy()
    assert ts.min() >= 0 and ts.max() < 7 * 86400 and np.all(np.diff(ts) >= 0)


def test_file_is_small_and_holds_tens_of_thousands_of_rows(trace):
    assert SAMPLE.stat().st_size <= 2_000_000
    assert 35_000 <= trace.height <= 60_000


def test_committed_sample_is_generated_byte_identical_from_the_committed_bundle(tmp_path):
    out = tmp_path / "again.csv"
    run_cli("generate", BUNDLE, "--out", out, "--format", "burstgpt", "--seed", "0", check=True)  # make sample
    assert sha256_file(out) == sha256_file(SAMPLE)


def test_another_seed_gives_another_trace(tmp_path):
    run_cli("generate", BUNDLE, "--out", tmp_path / "s1.csv", "--format", "burstgpt", "--seed", "1", check=True)
    assert sha256_file(tmp_path / "s1.csv") != sha256_file(SAMPLE)


def test_inter_arrivals_are_burstier_than_poisson(trace):
    gaps = np.diff(trace["Timestamp"].to_numpy()).astype(float)
    assert gaps.std() / gaps.mean() > 1.0


def test_services_differ_in_burstiness(trace):
    conv = _window_cvs(trace.filter(pl.col("Log Type") == "Conversation log")["Timestamp"].to_numpy())
    api = _window_cvs(trace.filter(pl.col("Log Type") == "API log")["Timestamp"].to_numpy())
    assert np.median(api) > np.median(conv) + 0.1


def test_failure_share_is_near_burstgpt_1_and_rises_with_load(trace):
    failed = (trace["Response tokens"] == 0).to_numpy()
    assert 0.012 <= failed.mean() <= 0.025
    assert (trace.filter(pl.col("Response tokens") == 0)["Total tokens"]
            == trace.filter(pl.col("Response tokens") == 0)["Request tokens"]).all()
    ts = trace["Timestamp"].to_numpy()
    load = np.bincount(ts // 600)[ts // 600]
    low, high = load <= np.percentile(load, 25), load >= np.percentile(load, 75)
    assert failed[high].mean() > 1.5 * failed[low].mean()


def test_conversation_peaks_in_working_hours_with_a_midday_dip(trace):
    hours = _hour_counts(trace.filter(pl.col("Log Type") == "Conversation log")["Timestamp"].to_numpy())
    assert 9 <= hours.argmax() <= 17
    morning, afternoon, midday = hours[9:12].max(), hours[14:17].max(), hours[12:14].min()
    assert midday < 0.5 * min(morning, afternoon)
    assert hours[0:6].mean() < 0.2 * hours.max()


def test_api_runs_at_night_too(trace):
    hours = _hour_counts(trace.filter(pl.col("Log Type") == "API log")["Timestamp"].to_numpy())
    assert hours[0:6].mean() > 0.5 * hours.mean()


def test_weekend_conversation_is_lower(trace):
    conv = trace.filter(pl.col("Log Type") == "Conversation log")["Timestamp"].to_numpy()
    days = np.bincount(conv // 86400, minlength=7)
    assert days[5:7].mean() < 0.85 * days[1:5].mean()  # day 0 holds the ramp-up head


def test_head_ramps_up(trace):
    ts = trace["Timestamp"].to_numpy()
    first_hour_day0 = np.count_nonzero(ts < 3600)
    first_hour_day1 = np.count_nonzero((ts >= 86400) & (ts < 86400 + 3600))
    assert first_hour_day0 < 0.5 * first_hour_day1


def test_lengths_follow_the_fitted_joint_structure(trace):
    ok = trace.filter(pl.col("Response tokens") > 0)
    conv, api = ok.filter(pl.col("Log Type") == "Conversation log"), ok.filter(pl.col("Log Type") == "API log")
    rho_conv = stats.spearmanr(conv["Request tokens"], conv["Response tokens"])[0]
    rho_api = stats.spearmanr(api["Request tokens"], api["Response tokens"])[0]
    assert rho_conv > 0.2 and abs(rho_api) < 0.15
    req, resp = conv["Request tokens"].to_numpy(), conv["Response tokens"].to_numpy()
    assert np.median(resp[req >= 3000]) > 3 * np.median(resp[req < 100])
    # request tokens are heavy-tailed: log-normal spread of about 1.4-1.6 (fitted on the heads)
    assert 1.3 < np.log(req).std() < 1.7 and np.percentile(req, 99) > 10 * np.median(req)


def test_model_mix_matches_the_bundle(trace):
    """Each (model, service) client's share of the requests is the bundle's, within sampling noise."""
    clients = json.loads(BUNDLE.read_text())["clients"]
    services = {"conversation": "Conversation log", "api": "API log"}
    for c in clients:
        model, service = c["id"].split("|")
        got = trace.filter((pl.col("Model") == model) & (pl.col("Log Type") == services[service])).height / trace.height
        assert abs(got - c["share"]) < 4 * np.sqrt(c["share"] * (1 - c["share"]) / trace.height), c["id"]
