"""The streamed bundle fit (batches of rows, sums merged across batches, a second pass for the
Weibull sums and Spearman numerators) gives the same bundle as the whole table fitted in memory
(tests/bundle_reference.py), for every category, grouping and batch size, and its pieces equal
direct numpy / scipy computations."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from scipy import stats

from bundle_reference import reference_bundle
from conftest import scratch_spy
from servetrace.bundle import ranks as fit_ranks, sums
from servetrace.rows import moments, read
from servetrace.bundle.fit import OTHER, bundle_from_requests, fit_bundle
from servetrace.io import write_parquet
from servetrace.schema import CANONICAL
from servetrace.settings import DEFAULTS, Settings
from test_bundle_fit import SOURCE, canonical, planted_client


def _without_time(bundle: dict) -> dict:
    return {k: v for k, v in bundle.items() if k != "created_at"}


def test_clients_beyond_the_cap_merge_into_other():
    rng = np.random.default_rng(11)
    n = DEFAULTS.fit.max_clients + 44
    sizes = 5 + np.arange(n)  # distinct sizes: the smallest 45 clients are merged
    frame = canonical(pl.concat([planted_client(rng, f"c{i:03d}", 1.0, 1.0, int(s), 0.0) for i, s in enumerate(sizes)]))
    clients = bundle_from_requests(frame, Settings(), SOURCE)["clients"]
    assert len(clients) == DEFAULTS.fit.max_clients
    other = next(c for c in clients if c["id"] == OTHER)
    assert other["requests"] == int(sizes[:n - DEFAULTS.fit.max_clients + 1].sum())
    kept = {c["id"]: c["requests"] for c in clients if c["id"] != OTHER}
    assert kept == {f"c{i:03d}": int(s) for i, s in enumerate(sizes) if i >= n - DEFAULTS.fit.max_clients + 1}
    assert sum(c["share"] for c in clients) == pytest.approx(1.0)


def test_row_order_does_not_change_the_bundle():
    rng = np.random.default_rng(12)
    frame = canonical(pl.concat([planted_client(rng, "a", 2.0, 1.5, 3000, 0.3),
                                 planted_client(rng, "b", 0.5, 1.0, 800, 0.0)]))
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=3)
    assert _without_time(bundle_from_requests(shuffled, Settings(), SOURCE)) == \
        _without_time(bundle_from_requests(frame, Settings(), SOURCE))


def test_a_file_fit_equals_the_frame_fit(tmp_path):
    """The file edge reads only some columns (all-null ones skipped, strings as categories)."""
    rng = np.random.default_rng(13)
    a = planted_client(rng, "x", 1.0, 1.0, 2000, 0.2, model=["m1"] * 2000, service=["api"] * 2000)
    b = planted_client(rng, "y", 3.0, 2.0, 4000, 0.0, model=["m2"] * 4000, service=["api"] * 4000)
    frame = canonical(pl.concat([a, b]).with_columns(pl.lit(None, dtype=pl.String).alias("client_id")))
    write_parquet(tmp_path / "requests.parquet", frame.to_arrow().cast(CANONICAL), {"servetrace.format": "synthetic"})
    from_file = fit_bundle(tmp_path)
    from_frame = bundle_from_requests(frame, Settings(), from_file["source"])
    assert from_file["group_by"] == "model,service" and [c["id"] for c in from_file["clients"]] == ["m2|api", "m1|api"]
    assert _without_time(from_file) == _without_time(from_frame)


def assert_same(a, b, path=""):
    """Every number equal within float rounding (summation order), everything else equal."""
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            if k != "created_at":
                assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float) and ".arrival_model.candidates." in path:
        # scored on traces generated from the window fits: a last-digit difference in a Gamma shape
        # moves a few draws, so the candidates' figures agree to sampling noise, not to rounding
        assert a == pytest.approx(b, abs=0.02, nan_ok=True), path
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-12, nan_ok=True), path
    else:
        assert a == b, path


def _mixed(seed: int) -> pl.DataFrame:
    """Three clients over several windows; failures, some with zero outputs; 1 s ties."""
    rng = np.random.default_rng(seed)
    parts = [planted_client(rng, "a", 2.0, 2.0, 9000, 0.5), planted_client(rng, "b", 0.7, 0.6, 3000, -0.2, t0=500.0),
             planted_client(rng, "c", 0.2, 1.0, 400, 0.0, t0=3000.0)]
    frame = pl.concat(parts).with_columns(pl.col("arrival_s").round(0))
    failed = rng.random(frame.height) < 0.05
    zero = failed & (rng.random(frame.height) < 0.7)
    return frame.with_columns(pl.Series("failed", failed),
                              pl.when(pl.Series(zero)).then(0).otherwise(pl.col("output_tokens")).alias("output_tokens"))


def _tables() -> dict[str, pl.DataFrame]:
    rng = np.random.default_rng(21)
    mixed = _mixed(21)
    n = mixed.height
    reason = mixed.with_columns((pl.col("output_tokens") * pl.Series(rng.uniform(0, 1, n))).cast(pl.Int32).alias("reason_tokens"))
    images = pl.Series(np.where(rng.random(n) < 0.4, rng.integers(1, 4, n), 0).astype(np.int32))
    multimodal = mixed.with_columns(images.alias("image_count"),
                                    (images * 256 + pl.Series(rng.integers(0, 3, n))).cast(pl.Int32).alias("image_tokens"))
    many = pl.concat([planted_client(rng, f"c{i:03d}", 1.0, 1.0, 5 + i, 0.0) for i in range(DEFAULTS.fit.max_clients + 9)])
    by_model = mixed.with_columns(pl.col("client_id").alias("model"), pl.lit("api").alias("service"),
                                  pl.lit(None, dtype=pl.String).alias("client_id"))
    constant = mixed.with_columns(pl.lit(100, dtype=pl.Int32).alias("input_tokens"))  # Spearman undefined: NaN
    return {k: canonical(v) for k, v in {"mixed": mixed, "reason": reason, "multimodal": multimodal, "many": many,
                                         "by_model": by_model, "constant": constant}.items()}


@pytest.mark.parametrize("rows", [None, 997])
def test_streamed_fit_equals_the_in_memory_fit(monkeypatch, rows):
    """Batches of 997 rows: every client's inter-arrivals and sums cross many batch edges."""
    if rows:
        monkeypatch.setattr(read, "BATCH_ROWS", rows)
    for name, frame in _tables().items():
        got = bundle_from_requests(frame, Settings(), SOURCE)
        want = reference_bundle(frame, Settings(), SOURCE)
        assert got["category"] == {"reason": "reason", "multimodal": "multimodal"}.get(name, "language"), name
        assert_same(got, want, name)


def test_an_unsorted_file_is_sorted_into_a_temporary_copy(tmp_path, monkeypatch):
    monkeypatch.setattr(read, "BATCH_ROWS", 1000)
    frame = _tables()["mixed"]
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=5)
    write_parquet(tmp_path / "requests.parquet", shuffled.to_arrow().cast(CANONICAL), {"servetrace.format": "synthetic"})
    copies = scratch_spy(monkeypatch, read, "sorted_copy", 2)
    got = fit_bundle(tmp_path)
    assert_same(got, reference_bundle(frame, Settings(), got["source"]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["requests.parquet"]  # the copy is gone
    # made beside the table, live (Ctrl-C removes it) and named as the next run's sweep removes it after a kill
    assert [(work.parent, live, swept) for work, live, swept in copies] == [(tmp_path, True, True)]


def test_gaps_carry_each_clients_last_arrival_across_batches():
    rng = np.random.default_rng(14)
    n, k = 5000, 7
    t = np.sort(rng.uniform(0, 1000, n)).round(1)  # ties
    c = rng.integers(0, k, n).astype(np.int32)
    w = (t // 150).astype(np.int64)  # windows of 150 s: batches and windows cut the rows at different places
    gaps = sums.Gaps(k)
    edges = [0, 1, 2, 700, 701, 3000, n]
    got, got_w = [], []
    for lo, hi in zip(edges, edges[1:]):
        by = gaps(c[lo:hi], t[lo:hi], w[lo:hi])
        x, xw = np.empty(hi - lo), np.empty(hi - lo)
        x[by.order], xw[by.order] = by.x, by.x_window
        np.testing.assert_array_equal(by.client, c[lo:hi][by.order])
        got.append(x)
        got_w.append(xw)
    got, got_w = np.concatenate(got), np.concatenate(got_w)
    for i in range(k):
        ti, wi = t[c == i], w[c == i]
        want = np.r_[np.nan, np.maximum(np.diff(ti), 1e-6)]
        np.testing.assert_array_equal(got[c == i], want)
        # a window's gaps: only those whose previous arrival is in the same window
        np.testing.assert_array_equal(got_w[c == i], np.where(np.r_[False, wi[1:] == wi[:-1]], want, np.nan))


@pytest.mark.parametrize("g0,window_s,dataset_window_s", [(0, 600, 21_600), (-600, 600, 3_600), (1_700_000_000, 7, 21_000)])
def test_window_indices_equal_the_grid_expressions(g0, window_s, dataset_window_s):
    """Exact multiples of the width and their neighbours, where a floor division can round either way."""
    rng = np.random.default_rng(17)
    edges = g0 + np.arange(0, 5000, dtype=float) * window_s
    t = np.sort(np.concatenate([edges, np.nextafter(edges, np.inf), np.nextafter(edges, -np.inf)[1:],
                                g0 + rng.uniform(0, 5000 * window_s, 100_000).round(3)]))
    grid = sums.Grid(g0, window_s, dataset_window_s)
    starts = pl.DataFrame({"arrival_s": t}).select(grid.window, grid.dataset)
    window, dataset = grid.indices(t)
    np.testing.assert_array_equal(window * window_s + g0, starts["window_start_s"].to_numpy())
    np.testing.assert_array_equal(dataset * dataset_window_s + g0, starts["dataset_start_s"].to_numpy())


def test_merged_sums_give_the_moments_of_all_rows():
    rng = np.random.default_rng(15)
    x = rng.lognormal(0, 2, 20_000)
    g = rng.integers(0, 5, x.size)
    x[rng.random(x.size) < 0.05] = np.nan  # no inter-arrival (a client's first row)
    failed = rng.random(x.size) < 0.1
    parts = []
    for lo in range(0, x.size, 1234):
        order = np.argsort(g[lo:lo + 1234], kind="stable")
        groups, sums = moments.segment_sums(g[lo:lo + 1234][order], x[lo:lo + 1234][order], failed[lo:lo + 1234][order])
        parts.append(pl.DataFrame({"g": groups, **sums}))
    got = moments.moments(moments.merge_sums(parts, ["g"])).sort("g")
    for i in range(5):
        xi = x[(g == i) & np.isfinite(x)]
        row = got.row(i, named=True)
        assert row["n_iat"] == xi.size and row["requests"] == int((g == i).sum())
        assert row["failed"] == int(failed[g == i].sum())
        assert row["iat_mean"] == pytest.approx(xi.mean(), rel=1e-12)
        assert row["iat_std"] == pytest.approx(xi.std(ddof=1), rel=1e-12)
        assert row["sum_log"] == pytest.approx(np.log(xi).sum(), rel=1e-12)


def test_spearman_from_midranks_equals_scipy():
    rng = np.random.default_rng(16)
    n = 3000
    a = rng.integers(0, 40, n)  # many ties
    b = (a + rng.integers(0, 30, n)) % 50
    c = rng.integers(0, 2, n).astype(np.int32)
    fields = pl.DataFrame({"client": c, "dataset_start_s": 0, "a": a, "b": b, "_joint": True})
    counts = {f: fields.group_by("client", "dataset_start_s", f, "_joint").agg(pl.len().cast(pl.Int64).alias("n")) for f in "ab"}
    ranks = {f: fit_ranks.midranks(counts[f], f) for f in "ab"}
    rows = fields.join(ranks["a"].select("client", "a", "_r:a"), on=["client", "a"]).join(
        ranks["b"].select("client", "b", "_r:b"), on=["client", "b"])
    cross = rows.group_by("client").agg((pl.col("_r:a") * pl.col("_r:b")).sum().alias("x:a:b"))
    got = fit_ranks.spearman(ranks, cross, ("a", "b")).sort("client")
    for i in range(2):
        want = stats.spearmanr(a[c == i], b[c == i]).statistic
        assert got["rho:a:b"][i] == pytest.approx(want, rel=1e-12)
        assert got["corr:a:b"][i] == pytest.approx(2 * np.sin(np.pi * want / 6), rel=1e-12)


def test_many_grouping_combinations_equal_the_in_memory_fit(monkeypatch):
    """Two grouping columns whose combinations outnumber a batch's rows (clients found by a sort,
    not a dense table), past the client cap."""
    monkeypatch.setattr(read, "BATCH_ROWS", 997)
    rng = np.random.default_rng(18)
    frame = _mixed(18)
    n = frame.height
    frame = canonical(frame.with_columns(pl.Series("client_id", rng.integers(0, 300, n).astype(str)),
                                         pl.Series("session_id", rng.integers(0, 400, n).astype(str))))
    settings = Settings(group_by="client_id,session_id")
    got = bundle_from_requests(frame, settings, SOURCE)
    assert got["group_by"] == "client_id,session_id" and len(got["clients"]) == DEFAULTS.fit.max_clients
    assert_same(got, reference_bundle(frame, settings, SOURCE))
