"""Fitting a bundle from a canonical request table, against planted ground truth and independent
numpy / scipy computations."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from scipy import stats

from servetrace.bundle.fit import bundle_from_requests, fit_bundle, write_bundle
from servetrace.bundle.model import load_bundle
from servetrace.errors import ServetraceError
from servetrace.io import write_parquet
from servetrace.schema import CANONICAL
from servetrace.settings import Settings

SOURCE = {"path": "synthetic", "sha256": None, "rows": None, "format": "synthetic"}


def planted_client(rng, cid, rate, cv, n, rho, t0=0.0, **extra):
    shape = 1 / cv**2
    t = t0 + np.cumsum(rng.gamma(shape, 1 / (rate * shape), n))
    z = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], n)
    cols = {"arrival_s": t, "client_id": [cid] * n,
            "input_tokens": np.maximum(1, np.exp(6 + z[:, 0])).astype(np.int32),
            "output_tokens": np.maximum(1, np.exp(4 + 0.8 * z[:, 1])).astype(np.int32),
            "failed": [False] * n}
    cols.update(extra)
    return pl.DataFrame(cols)


def canonical(frame: pl.DataFrame) -> pl.DataFrame:
    """Fill the canonical columns a planted frame lacks, with the canonical types."""
    cols = {f.name: (frame[f.name] if f.name in frame.columns else pl.Series(f.name, [None] * frame.height))
            for f in CANONICAL}
    table = pa.table({k: pa.array(v.to_list(), type=CANONICAL.field(k).type) for k, v in cols.items()}, schema=CANONICAL)
    return pl.from_arrow(table).sort("arrival_s")


def planted_fit(seed: int, *clients: tuple) -> tuple[pl.DataFrame, dict]:
    """Rows of planted clients (id, rate, cv, rows, correlation) and the bundle fitted on them."""
    rng = np.random.default_rng(seed)
    frame = canonical(pl.concat([planted_client(rng, *c) for c in clients]))
    return frame, bundle_from_requests(frame, Settings(), SOURCE)


@pytest.fixture(scope="module")
def planted():
    return planted_fit(7, ("big", 4.0, 2.0, 60_000, 0.6), ("small", 1.0, 1.0, 15_000, 0.0))


def test_planted_arrivals_are_recovered(planted):
    frame, bundle = planted
    big, small = bundle["clients"]
    assert [big["id"], small["id"]] == ["big", "small"]
    assert big["share"] == pytest.approx(60_000 / 75_000)
    cvs = np.array([c for c in big["windows"]["cv"] if c is not None])
    assert np.median(cvs) == pytest.approx(2.0, rel=0.1)
    fams = big["windows"]["family"]
    assert fams.count("gamma") / len(fams) > 0.9  # planted Gamma, CV 2: Gamma must win the likelihood
    g = [k for k, f in enumerate(fams) if f == "gamma"]
    shape, scale, rate = (np.array(big["windows"][key])[g] for key in ("shape", "scale", "rate_rps"))
    np.testing.assert_allclose(shape * scale, 1 / rate, rtol=1e-9)  # ServeGen's moment match
    np.testing.assert_allclose(shape, 1 / np.array(big["windows"]["cv"])[g] ** 2, rtol=1e-9)
    assert big["iat"]["family"] == "gamma" and big["iat"]["cv"] == pytest.approx(2.0, rel=0.05)
    assert big["iat"]["ks"] < 0.05


def covered_s(t: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Seconds of each 600 s window between the first and the last arrival (numpy, by hand)."""
    return np.minimum(starts + 600, t.max()) - np.maximum(starts, t.min())


def test_window_rates_match_counts(planted):
    frame, bundle = planted
    t = frame["arrival_s"].to_numpy()
    counts = np.bincount((t // 600).astype(int))
    cover = covered_s(t, np.arange(counts.size) * 600.0)
    assert cover[1:-1] == pytest.approx(600) and cover[-1] < 600  # the last window is cut
    np.testing.assert_allclose(bundle["aggregate"]["rate_rps"], counts / cover)
    big = frame.filter(pl.col("client_id") == "big")["arrival_s"].to_numpy()
    per = np.bincount((big // 600).astype(int))
    w = bundle["clients"][0]["windows"]
    np.testing.assert_allclose(w["rate_rps"], per[np.asarray(w["start_s"]) // 600] / cover[np.asarray(w["start_s"]) // 600])
    assert bundle["covered"] == {"start_s": t.min(), "end_s": t.max()}
    # the aggregate CV of one window against numpy
    t = np.sort(frame["arrival_s"].to_numpy())
    first = np.diff(t[t < 600])
    assert bundle["aggregate"]["cv"][0] == pytest.approx(first.std(ddof=1) / first.mean(), rel=1e-6)


def test_length_pmfs_and_joint(planted):
    frame, bundle = planted
    small = bundle["clients"][1]
    rows = frame.filter(pl.col("client_id") == "small")
    ln = small["lengths"]
    assert ln["window_start_s"][0] == 0 and bundle["dataset_window_s"] == 21600
    first = rows.filter(pl.col("arrival_s") < 21600)["output_tokens"].to_numpy()
    pmf = ln["fields"]["output_tokens"][0]
    counts = np.bincount(first)
    exact = np.asarray(pmf["values"]) < 128
    np.testing.assert_allclose(np.asarray(pmf["probs"])[exact], counts[np.asarray(pmf["values"])[exact]] / first.size)
    mean = np.dot(pmf["values"], pmf["probs"])
    assert mean == pytest.approx(first.mean(), rel=0.002)  # bins keep their mean
    big = bundle["clients"][0]
    brows = frame.filter(pl.col("client_id") == "big")
    rho = stats.spearmanr(brows["input_tokens"], brows["output_tokens"]).statistic
    assert big["joint"]["spearman"]["input_tokens:output_tokens"] == pytest.approx(rho, abs=1e-9)
    assert big["joint"]["copula"] == "gaussian"
    assert big["joint"]["corr"][0][1] == pytest.approx(0.6, abs=0.02)  # planted normal-score correlation
    fit = big["lengths"]["fit"]["input_tokens"]
    assert fit["family"] == "lognormal"
    assert fit["params"]["mu"] == pytest.approx(6.0, abs=0.03) and fit["params"]["sigma"] == pytest.approx(1.0, abs=0.03)


def test_grouping_without_client_ids_and_unsafe_ids():
    rng = np.random.default_rng(1)
    a = planted_client(rng, "a", 2.0, 1.0, 2000, 0.0, model=["m1"] * 2000, service=["api"] * 2000)
    b = planted_client(rng, "x", 1.0, 1.0, 1000, 0.0, model=["m2"] * 1000, service=["conv"] * 1000)
    no_ids = pl.concat([a, b]).with_columns(pl.lit(None, dtype=pl.String).alias("client_id"))
    bundle = bundle_from_requests(canonical(no_ids), Settings(), SOURCE)
    assert bundle["group_by"] == "model,service"
    assert [c["id"] for c in bundle["clients"]] == ["m1|api", "m2|conv"]
    assert [c["safe_id"] for c in bundle["clients"]][0].startswith("m1_api-")
    unsafe = canonical(pl.concat([planted_client(rng, "../x", 1.0, 1.0, 500, 0.0),
                                  planted_client(rng, "a b", 1.0, 1.0, 400, 0.0)]))
    ids = {c["id"]: c["safe_id"] for c in bundle_from_requests(unsafe, Settings(), SOURCE)["clients"]}
    assert "/" not in ids["../x"] and not ids["../x"].startswith(".") and " " not in ids["a b"]


def test_reason_category_and_ratio():
    rng = np.random.default_rng(2)
    c = planted_client(rng, "r", 1.0, 1.0, 3000, 0.0)
    c = c.with_columns((pl.col("output_tokens") * 0.75).round().cast(pl.Int32).alias("reason_tokens"))
    bundle = bundle_from_requests(canonical(c), Settings(), SOURCE)
    assert bundle["category"] == "reason"
    ratio = bundle["clients"][0]["lengths"]["fields"]["reason_ratio"][0]
    ratios = (c["reason_tokens"] / c["output_tokens"]).to_numpy()
    mean = float(np.dot(ratio["values"], ratio["probs"]))
    assert mean == pytest.approx(np.round(ratios * 500).mean() / 500, abs=1e-9)


def test_fit_command_writes_a_valid_bundle(tmp_path, planted):
    frame, _ = planted
    write_parquet(tmp_path / "requests.parquet", frame.to_arrow().cast(CANONICAL),
                  {"servetrace.format": "synthetic", "servetrace.rows_read": str(frame.height)})
    path = write_bundle(tmp_path, Settings())
    bundle = load_bundle(path)
    assert bundle["source"]["rows"] == frame.height and len(bundle["clients"]) == 2
    assert fit_bundle(tmp_path)["clients"][0]["share"] == bundle["clients"][0]["share"]


def test_fit_refuses_missing_table(tmp_path):
    with pytest.raises(ServetraceError, match="requests.parquet: no such file"):
        fit_bundle(tmp_path)


def test_edge_windows_are_not_diluted_by_the_part_the_trace_does_not_cover():
    """A trace that starts 350 s and stops 250 s into its windows (like Azure's one-hour trace) has
    the same rate in its edge windows as inside: count / covered seconds, not count / 600."""
    rng = np.random.default_rng(11)
    t = 350 + np.cumsum(rng.exponential(1 / 5.0, 30_000))
    t = t[t < 3 * 600 + 350]  # [350, 2150): window 0 is covered 250 s, window 3 350 s
    frame = canonical(pl.DataFrame({"arrival_s": t, "client_id": ["a"] * t.size,
                                    "input_tokens": np.full(t.size, 10, dtype=np.int32),
                                    "output_tokens": np.full(t.size, 5, dtype=np.int32), "failed": [False] * t.size}))
    bundle = bundle_from_requests(frame, Settings(), SOURCE)
    rates = np.asarray(bundle["aggregate"]["rate_rps"])
    assert bundle["aggregate"]["window_start_s"] == [0, 600, 1200, 1800]
    counts = np.bincount((t // 600).astype(int))
    np.testing.assert_allclose(rates, counts / covered_s(t, np.arange(4) * 600.0))
    assert rates == pytest.approx(5.0, rel=0.1)  # all four, edges included (diluted: 2.1 and 2.9)
    assert bundle["clients"][0]["windows"]["rate_rps"] == pytest.approx(rates.tolist())
    assert bundle["covered"]["start_s"] == t.min() and bundle["covered"]["end_s"] == t.max()


def test_failure_rates_are_recorded_per_client_and_window():
    """BurstGPT-style failures (output 0): 5 % of client a's requests in its first hour, 20 % after;
    2 % of b's. The bundle records each share (numpy by hand) and that a failure is a zero output."""
    rng = np.random.default_rng(3)
    a = planted_client(rng, "a", 2.0, 1.0, 14_400, 0.3)
    b = planted_client(rng, "b", 1.0, 1.0, 7_200, 0.0)
    ta = a["arrival_s"].to_numpy()
    fail_a = rng.random(ta.size) < np.where(ta < 3600, 0.05, 0.20)
    fail_b = rng.random(b.height) < 0.02
    a = a.with_columns(pl.Series("failed", fail_a), pl.when(pl.Series(fail_a)).then(0).otherwise(pl.col("output_tokens")).alias("output_tokens"))
    b = b.with_columns(pl.Series("failed", fail_b), pl.when(pl.Series(fail_b)).then(0).otherwise(pl.col("output_tokens")).alias("output_tokens"))
    frame = canonical(pl.concat([a, b]))
    bundle = load_roundtrip(bundle_from_requests(frame, Settings(), SOURCE))
    ca, cb = bundle["clients"]
    assert ca["failure_rate"] == pytest.approx(fail_a.mean(), abs=1e-9)
    assert cb["failure_rate"] == pytest.approx(fail_b.mean(), abs=1e-9)
    w = (ta // 600).astype(int)
    by_window = np.bincount(w, weights=fail_a) / np.bincount(w)
    np.testing.assert_allclose(ca["windows"]["failure_rate"], by_window[np.asarray(ca["windows"]["start_s"]) // 600], atol=1e-9)
    assert np.mean(ca["windows"]["failure_rate"][:6]) == pytest.approx(0.05, abs=0.02)
    assert np.mean(ca["windows"]["failure_rate"][6:]) == pytest.approx(0.20, abs=0.02)
    total = np.r_[fail_a, fail_b].mean()
    assert bundle["failures"] == {"rate": pytest.approx(total, abs=1e-9), "zero_output": True}
    # failed rows that keep an output: failures are not zero outputs there
    kept = canonical(pl.concat([a.with_columns(pl.lit(7).alias("output_tokens")), b]))
    assert bundle_from_requests(kept, Settings(), SOURCE)["failures"]["zero_output"] is False


def test_a_trace_without_failures_has_no_failure_fields(planted):
    _, bundle = planted
    assert "failures" not in bundle and "failure_rate" not in bundle["clients"][0]
    assert "failure_rate" not in bundle["clients"][0]["windows"]


def load_roundtrip(bundle: dict) -> dict:
    """Through the schema and the JSON text, as a consumer reads it."""
    import json

    from servetrace.bundle.model import dumps_bundle, validate_bundle

    return validate_bundle(json.loads(dumps_bundle(bundle)))


def test_copula_corr_reproduces_the_spearman_of_non_gaussian_lengths():
    """Azure-like dependence: the body of input and output positively associated, the longest
    prompts getting short answers. Normal scores weight those tails and nearly cancel (the old fit
    gave 0.014 for Azure's Spearman 0.073); `corr` must be the copula correlation whose Spearman is
    the source's, and a trace generated from the bundle must have that Spearman."""
    from scipy import special

    from servetrace.generation import GenerateOptions, generate_table

    rng = np.random.default_rng(9)
    n = 40_000
    z = rng.multivariate_normal([0, 0], [[1, 0.45], [0.45, 1]], n)
    tail = z[:, 0] > 1.3  # the top 10 % of prompts: answers from the bottom of the output range
    z[tail, 1] = -np.abs(rng.normal(1.6, 0.5, tail.sum()))
    t = np.cumsum(rng.exponential(0.1, n))
    frame = canonical(pl.DataFrame({"arrival_s": t, "client_id": ["a"] * n,
                                    "input_tokens": np.exp(6 + z[:, 0]).astype(np.int32) + 1,
                                    "output_tokens": np.exp(4 + 0.8 * z[:, 1]).astype(np.int32) + 1,
                                    "failed": [False] * n}))
    x, y = frame["input_tokens"].to_numpy(), frame["output_tokens"].to_numpy()
    rho = stats.spearmanr(x, y).statistic
    scores = [special.ndtri(stats.rankdata(v) / (n + 1)) for v in (x, y)]
    assert np.corrcoef(*scores)[0, 1] < rho / 1.8  # far from Gaussian (planted: 0.04 against 0.084)
    bundle = bundle_from_requests(frame, Settings(), SOURCE)
    joint = bundle["clients"][0]["joint"]
    assert joint["spearman"]["input_tokens:output_tokens"] == pytest.approx(rho, abs=1e-9)
    assert joint["corr"][0][1] == pytest.approx(2 * np.sin(np.pi * rho / 6), abs=1e-9)
    syn = pl.from_arrow(generate_table(bundle, GenerateOptions(seed=1))[0])
    assert stats.spearmanr(syn["input_tokens"], syn["output_tokens"]).statistic == pytest.approx(rho, abs=0.02)


def test_multimodal_rows_without_images_do_not_break_the_fit(tmp_path):
    """Regression: 0 images made 0/0 = NaN in tokens per image, and the strict int cast failed."""
    from conftest import run_cli

    (tmp_path / "mm.csv").write_text(
        "TIMESTAMP,NumImages,ContextTokens,GeneratedTokens\n"
        "2024-10-15T12:00:00.269Z,1,700,50\n2024-10-15T12:00:01.000Z,0,2100,80\n"
        "2024-10-15T12:00:02.000Z,2,900,80\n2024-10-15T12:00:03.500Z,0,300,20\n"
    )
    run_cli("characterize", tmp_path / "mm.csv", "--out", tmp_path / "o", "--quiet", check=True)
    assert (tmp_path / "o" / "bundle.json").exists()


@pytest.mark.parametrize("family,shape,scale", [("gamma", 0.3, 2.0), ("gamma", 4.0, 10.0), ("weibull", 0.6, 1.5), ("weibull", 2.0, 0.2)])
def test_ks_distance_equals_scipys_kstest(family, shape, scale):
    from servetrace.bundle.arrivals import iat_ks

    rng = np.random.default_rng(19)
    x = rng.gamma(1.5, 1.0, 5000) + 1e-6
    dist = stats.gamma(a=shape, scale=scale) if family == "gamma" else stats.weibull_min(c=shape, scale=scale)
    assert iat_ks(np.r_[x, np.nan], family, shape, scale) == pytest.approx(stats.kstest(x, dist.cdf).statistic, rel=1e-12)
    assert iat_ks(x[:2], family, shape, scale) is None
