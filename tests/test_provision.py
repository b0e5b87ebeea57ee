"""The provisioning experiment: the queue against a per-request reference, capacities by hand."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from scipy import stats

from servetrace.errors import ServetraceError
from servetrace.generation.table import canonical_table
from servetrace.io import write_parquet
from servetrace.provision import Requests, ServingModel, min_servers, naive_requests, provision_traces
from servetrace.provision.model import latencies, waits

PREFILL = ServingModel().prefill_s_per_token


def reference_waits(a, w, s):
    """FIFO per server, one request at a time: the textbook recursion, request by request."""
    free, out = {}, np.zeros(len(a))
    for j in range(len(a)):
        start = max(a[j], free.get(s[j], -np.inf))
        out[j], free[s[j]] = start - a[j], start + w[j]
    return out


def test_waits_match_the_per_request_recursion():
    rng = np.random.default_rng(0)
    a = np.sort(rng.uniform(0, 100, 3000))
    w = rng.exponential(0.2, 3000)
    s = rng.integers(0, 9, 3000)
    np.testing.assert_allclose(waits(a, w, s), reference_waits(a, w, s), atol=1e-9)


def test_one_server_falls_behind_by_hand():
    # a request per second, each 2 s of prefill work: on one server request j waits j seconds
    a = np.arange(10.0)
    lat = latencies(a, np.full(10, 2.0 / PREFILL), np.zeros(10), 1, ServingModel())
    np.testing.assert_allclose(lat, 2.0 + np.arange(10))
    np.testing.assert_allclose(latencies(a, np.full(10, 2.0 / PREFILL), np.zeros(10), 2, ServingModel()), 2.0)


def bursts(k=8, n_bursts=50, gap=10.0, work=1.0):
    """`k` simultaneous requests every `gap` seconds, each `work` seconds of prefill."""
    n = k * n_bursts
    return Requests(np.repeat(np.arange(n_bursts) * gap, k), np.full(n, work / PREFILL), np.zeros(n))


@pytest.mark.parametrize("target, expected", [(1.0, 8), (2.0, 4), (3.0, 3), (4.5, 2), (8.0, 1)])
def test_min_servers_for_bursts_by_hand(target, expected):
    # round robin spreads a burst of 8 over N servers: the worst latency is ceil(8 / N) seconds
    got = min_servers(bursts(), ServingModel(quantile=1.0, target_s=target))
    assert got["servers"] == expected


def test_end_to_end_metric_adds_the_decode_steps():
    r = Requests(np.array([0.0, 100.0]), np.array([4000.0, 4000.0]), np.array([10.0, 10.0]))
    lat = latencies(r.arrival_s, r.input_tokens, r.output_tokens, 1, ServingModel(metric="e2e", decode_s_per_token=0.05))
    np.testing.assert_allclose(lat, 1.0 + 0.5)


def test_unreachable_target_is_reported_not_searched():
    got = min_servers(bursts(work=3.0), ServingModel(target_s=2.0))
    assert got["servers"] is None and "without any queueing" in got["reason"]


def test_naive_trace_keeps_count_span_and_marginals_but_not_correlation():
    rng = np.random.default_rng(1)
    x = rng.lognormal(6, 1, 20_000)
    src = Requests(np.sort(rng.uniform(0, 1000, 20_000)), x, x * 0.3)
    naive = naive_requests(src, seed=2)
    assert len(naive.arrival_s) == 20_000 and naive.arrival_s.min() >= 0 and naive.arrival_s.max() <= 1000
    assert stats.ks_2samp(naive.input_tokens, src.input_tokens).statistic < 0.02
    assert abs(stats.spearmanr(naive.input_tokens, naive.output_tokens).statistic) < 0.03
    gaps = np.diff(naive.arrival_s)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.03)


def test_naive_workload_under_provisions_a_bursty_trace():
    # on/off source: all requests in the first 100 s of every 1000 s; the mean rate hides the peaks
    rng = np.random.default_rng(3)
    t = np.sort((rng.integers(0, 20, 20_000) * 1000 + rng.uniform(0, 100, 20_000)))
    src = Requests(t, rng.integers(100, 2000, 20_000).astype(float), rng.integers(10, 300, 20_000).astype(float))
    model = ServingModel()
    assert min_servers(naive_requests(src), model)["servers"] < 0.5 * min_servers(src, model)["servers"]


def test_bad_model_parameters_are_one_line_errors():
    with pytest.raises(ServetraceError, match="routing"):
        ServingModel(routing="fastest")
    with pytest.raises(ServetraceError, match="quantile"):
        ServingModel(quantile=1.5)


def test_provision_writes_capacities_errors_and_a_curve(tmp_path):
    r = bursts(n_bursts=200)
    table = canonical_table({"arrival_s": r.arrival_s, "input_tokens": r.input_tokens.astype(np.int32),
                             "output_tokens": r.output_tokens.astype(np.int32)})
    write_parquet(tmp_path / "src.parquet", table)
    result = provision_traces(tmp_path / "src.parquet", tmp_path / "out", synthetic=tmp_path / "src.parquet",
                              model=ServingModel(quantile=1.0, target_s=2.0))
    saved = json.loads((tmp_path / "out" / "provision.json").read_text())
    assert saved["schema"] == "servetrace.provision/v1"
    assert saved["capacity"]["source"] == saved["capacity"]["ours"] == 4
    assert saved["error"]["ours"] == 0.0
    assert saved["capacity"]["naive"] < 4 and saved["error"]["naive"] < 0
    curve = pl.read_parquet(tmp_path / "out" / "tables" / "provision_curve.parquet")
    assert set(curve["trace"]) == {"source", "ours", "naive"}
    at4 = curve.filter((pl.col("servers") == 4) & (pl.col("trace") == "source"))["latency_s"].item()
    assert at4 == pytest.approx(2.0)
    assert saved["curve"]["servers"] == sorted(saved["curve"]["servers"])
    assert "vegaEmbed(" in (tmp_path / "out" / "provision.html").read_text()
    assert result["model"]["batch"] == 16
