"""Requests per modulation bin from the arrivals and the group codes (bundle/bin_counts.py) equal the
Polars aggregation by name they replace, across batch edges, and with arrivals out of order."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from servetrace import grouping
from servetrace.bundle.bin_counts import bin_counts, merged, runs
from servetrace.rows import read
from servetrace.rows.codes import group_codes


def _by_polars(path, g0: float, bin_s: float, ids: list[str]):
    frame = pl.scan_parquet(path)
    b = ((pl.col("arrival_s") - g0) / bin_s).floor().cast(pl.Int64).alias("b")
    whole = frame.select(b).group_by("b").len().sort("b").collect()
    own = frame.select(pl.col("client_id").fill_null("(none)").alias("cid"), b).group_by("cid", "b").len().sort("b").collect()
    return whole, {cid: own.filter(pl.col("cid") == cid) for cid in ids}


def test_counts_equal_the_aggregation_by_name(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    n = 20_000
    arrival = np.sort(rng.exponential(0.05, n).cumsum() + 1234.567)
    clients = [None if c == "-" else c for c in rng.choice(["a", "b", "c", "-"], n, p=[0.5, 0.3, 0.15, 0.05]).tolist()]
    path = tmp_path / "requests.parquet"
    pl.DataFrame({"arrival_s": arrival, "client_id": pl.Series(clients, dtype=pl.String)}).write_parquet(path)
    monkeypatch.setattr(read, "BATCH_ROWS", 777)  # bins straddle batch edges
    groups = group_codes(path, n, grouping.parse("client_id"))
    ids = ["a", "c", "(none)"]
    (bins, counts), own = bin_counts(path, 1200.0, 0.25, groups, ids)
    whole, want = _by_polars(path, 1200.0, 0.25, ids)
    assert np.array_equal(bins, whole["b"].to_numpy()) and np.array_equal(counts, whole["len"].to_numpy())
    assert counts.sum() == n
    for cid in ids:
        assert np.array_equal(own[cid][0], want[cid]["b"].to_numpy()), cid
        assert np.array_equal(own[cid][1], want[cid]["len"].to_numpy()), cid
    assert sum(int(own[c][1].sum()) for c in ids) == sum(c in ("a", "c", None) for c in clients)
    assert pq.read_metadata(path).num_rows == n


def test_runs_and_merge_out_of_order():
    b = np.array([5, 3, 3, 9, 5, 5, 1])
    v, c = runs(b)
    assert v.tolist() == [1, 3, 5, 9] and c.tolist() == [1, 2, 3, 1]
    v, c = runs(np.array([2, 2, 4, 4, 4, 7]))  # ascending: by runs
    assert v.tolist() == [2, 4, 7] and c.tolist() == [2, 3, 1]
    v, c = merged([(np.array([1, 4]), np.array([2, 1])), (np.array([4, 6]), np.array([5, 1])), (np.array([0]), np.array([3]))])
    assert v.tolist() == [0, 1, 4, 6] and c.tolist() == [3, 2, 6, 1]
    v, c = merged([])
    assert len(v) == 0 and len(c) == 0


def test_the_fit_second_pass_counts_what_a_read_of_the_file_counts(tmp_path, monkeypatch):
    """characterize's fit counts the arrival model's bins on its second pass (BinCounter): the same
    bins and counts as `bin_counts` over the file and as the Polars aggregation by name, for the
    dominant clients the bundle lists, and the same arrival model as from a read of the file."""
    from servetrace.bundle import arrival_model, fit
    from servetrace.settings import Settings

    rng = np.random.default_rng(11)
    n = 30_000
    arrival = np.sort(np.floor(rng.exponential(0.08, n).cumsum() * 4) / 4 + 3601.3)
    clients = rng.choice(["big", "mid", "small", "tiny"], n, p=[0.6, 0.3, 0.08, 0.02]).tolist()
    path = tmp_path / "requests.parquet"
    pl.DataFrame({"arrival_s": arrival, "client_id": clients, "input_tokens": rng.integers(1, 900, n).astype(np.int32),
                  "output_tokens": rng.integers(1, 300, n).astype(np.int32)}).write_parquet(path)
    monkeypatch.setattr(read, "BATCH_ROWS", 4_099)  # bins straddle batch edges
    settings = Settings(window_s=600)
    cols = fit.fit_columns(path, None)
    batches = read.file_batches(path)
    by = fit.choose_grouping(batches, cols, None)
    groups = group_codes(path, n, by)
    f = fit.Fit(cols, settings, fit.source_of(path), by, groups, float(arrival[0]), "language")
    f.count_bins = True
    f.first_pass(batches(f.read))
    bundle = f.finish(batches)
    t = settings.fit.arrival_model
    ids = arrival_model.dominant_clients(bundle, t)
    assert set(ids) == {"big", "mid"}  # planted: 60 % and 30 % of the requests
    g0 = float(bundle["aggregate"]["window_start_s"][0])
    assert f.counted.fits(g0, t.modulation.bin_s, ids)
    (bins, counts), own = bin_counts(path, g0, t.modulation.bin_s, groups, ids)
    whole, want = _by_polars(path, g0, t.modulation.bin_s, ids)
    for got_bins, got_counts, b, c in [(*f.counted.whole, bins, counts),
                                       (*f.counted.whole, whole["b"].to_numpy(), whole["len"].to_numpy()),
                                       *[(*f.counted.own[cid], *own[cid]) for cid in ids],
                                       *[(*f.counted.own[cid], want[cid]["b"].to_numpy(), want[cid]["len"].to_numpy())
                                         for cid in ids]]:
        assert np.array_equal(got_bins, b) and np.array_equal(got_counts, c)
    assert int(f.counted.whole[1].sum()) == n
    counted = arrival_model.with_arrival_model(bundle, path, t, counted=f.counted)["arrival_model"]
    read_again = arrival_model.with_arrival_model(bundle, path, t, groups=groups)["arrival_model"]
    assert counted == read_again
    assert not f.counted.fits(g0 + 600, t.modulation.bin_s, ids) and not f.counted.fits(g0, t.modulation.bin_s, ids[:1])
