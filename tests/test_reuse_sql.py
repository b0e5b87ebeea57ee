"""The block reuse analysis as set-based SQL (sql/reuse/, reuse/aggregates.py) on DuckDB: equal to
the numpy analysis (reuse/analysis.py) where that is exact, within SHARDS' error where it samples,
and equal to direct simulations (an LRU list, a set of seen prefixes) on traces with known content."""

from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from scipy import stats

from reuse_traces import session_trace
from servetrace import io
from servetrace.reuse.aggregates import analyze_on
from servetrace.reuse.analysis import analyze
from servetrace.settings import ReuseSettings
from servetrace.stages import sql
from test_reuse import MOONCAKE, lru_prefix_hits, lru_stack

COLUMNS = ("block_size", "capacity_blocks", "capacity_tokens", "method")


def on_duckdb(path: Path, t: ReuseSettings = ReuseSettings(), block_size: int | None = None, seed: int = 0):
    with sql.connect(path) as con:
        return analyze_on(con, block_size=block_size, seed=seed, t=t)


def assert_same(got, want, curve_abs: float = 1e-12) -> None:
    """Every number of the two analyses' values, curves and histograms equal (floats within 1e-12)."""
    for key in ("block_size", "block_size_basis", "blocks", "requests", "lru_method", "block_sizes", "shards_rate"):
        assert got.values[key] == want.values[key], key
    for key in ("reused_tokens", "new_tokens"):
        for q in ("mean", "p50", "p90"):
            assert got.values[key][q] == pytest.approx(want.values[key][q], rel=1e-12, abs=1e-12), (key, q)
    assert got.values["reused_token_share"] == pytest.approx(want.values["reused_token_share"], rel=1e-12)
    for col in COLUMNS:
        assert got.curve[col].to_list() == want.curve[col].to_list(), col
    assert got.curve["hit_rate"].to_numpy() == pytest.approx(want.curve["hit_rate"].to_numpy(), abs=curve_abs)


def written(tmp_path: Path, table: pa.Table) -> Path:
    path = tmp_path / "requests.parquet"
    io.write_parquet(path, table, {})
    return path


@pytest.fixture(scope="module")
def mooncake(tmp_path_factory):
    if not MOONCAKE.exists():
        pytest.skip("shared Mooncake trace absent")
    from servetrace.ingest import ingest_trace

    out = tmp_path_factory.mktemp("mooncake")
    ingest_trace(MOONCAKE, out)
    return out / "requests.parquet"


def test_equal_to_numpy_on_mooncake(mooncake):
    want, got = analyze(mooncake), on_duckdb(mooncake)
    assert got.values["lru_method"] == "exact" and got.values["block_size_basis"] == "exact"
    assert_same(got, want)
    assert got.values["infinite_hit_rate"] == pytest.approx(0.6396, abs=1e-4)  # 1 - distinct / references
    assert got.distance_hist.equals(want.distance_hist)
    # the distance samples: other seeded draws of the same 20,000 of the same distances
    assert len(got.distance_sample) == len(want.distance_sample) == 20_000
    assert stats.ks_2samp(got.distance_sample, want.distance_sample).pvalue > 1e-3


def test_shards_within_its_error_on_mooncake(mooncake):
    """Past exact_max references both sample (~20 k of 122 k, rate 0.16); each curve is within
    0.01 of the exact one (test_reuse's bound for SHARDS), and the infinite cache is counted
    exactly here, as numpy counts it when exact."""
    small = ReuseSettings(exact_max=30_000, sampled_target=20_000)
    exact, numpy_sampled, got = analyze(mooncake), analyze(mooncake, t=small), on_duckdb(mooncake, small)
    assert got.values["lru_method"] == "shards" and got.values["shards_rate"] == numpy_sampled.values["shards_rate"]
    src = pl.col("block_size") == 512
    truth = exact.curve.filter(src)
    for sampled in (got, numpy_sampled):
        curve = sampled.curve.filter(src)
        assert curve["capacity_blocks"].to_list() == truth["capacity_blocks"].to_list()
        assert np.abs(curve["hit_rate"].to_numpy() - truth["hit_rate"].to_numpy()).max() <= 0.01
    assert got.values["infinite_hit_rate"] == exact.values["infinite_hit_rate"]
    assert got.values["reused_tokens"] == exact.values["reused_tokens"]
    assert 0.1 * 20_000 < got.distance_hist["references"].sum() < 0.4 * 122_000


def _scrambled(table: pa.Table) -> pa.Table:
    """Block ids spread over the whole int64 range (past 2^32, negative): only equality matters."""
    ids = table["hash_ids"].combine_chunks()
    with np.errstate(over="ignore"):  # wraps mod 2^64, as meant
        wide = (ids.values.to_numpy().astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)).view(np.int64)
    return table.set_column(table.schema.get_field_index("hash_ids"), "hash_ids",
                            pa.ListArray.from_arrays(ids.offsets, pa.array(wide, pa.int64())))


def test_equal_to_direct_simulation(tmp_path):
    """Multi-turn sessions under shared system prompts (16-token blocks): the curve equals an
    LRU cache simulated block by block, the infinite cache and the reused tokens a set of seen
    prefixes, the distances an LRU list, with the ids scrambled over the int64 range."""
    table, _ = session_trace(n_sessions=150, seed=2)
    got = on_duckdb(written(tmp_path, _scrambled(table)))
    reqs = [list(r) for r in table["hash_ids"].to_pylist()]
    total = sum(map(len, reqs))
    assert got.values["block_size"] == 16 and got.values["blocks"] == total
    curve = got.curve.filter(pl.col("block_size") == 16)
    caps = curve["capacity_blocks"].to_list()
    want = [lru_prefix_hits(reqs, c if c is not None else 10 ** 9) / total for c in caps]
    assert curve["hit_rate"].to_list() == pytest.approx(want, abs=1e-12)
    seen, hits = set(), []  # leading blocks whose whole prefix an earlier request had
    for r in reqs:
        prefixes = [tuple(r[:k + 1]) for k in range(len(r))]
        hits.append(next((k for k, p in enumerate(prefixes) if p not in seen), len(r)))
        seen.update(prefixes)
    inp = table["input_tokens"].to_numpy()
    reused = np.minimum(np.array(hits) * 16, inp)
    assert got.values["infinite_hit_rate"] == pytest.approx(sum(hits) / total, abs=1e-12)
    assert got.values["reused_tokens"]["mean"] == pytest.approx(reused.mean(), rel=1e-12)
    assert got.values["reused_tokens"]["p90"] == pytest.approx(np.quantile(reused, 0.9), rel=1e-12)
    assert got.values["new_tokens"]["p50"] == pytest.approx(np.quantile(inp - reused, 0.5), rel=1e-12)
    # distances of the prefix-keyed references, by the textbook LRU list
    keys = [tuple(r[:k + 1]) for r in reqs for k in range(len(r))]
    sd = lru_stack(keys)
    finite = sd[sd >= 0]
    k = np.where(finite > 0, np.floor(np.log2(np.maximum(finite, 1))).astype(int) + 1, 0)
    assert got.distance_hist["references"].to_list() == np.bincount(k).tolist()
    assert sorted(got.distance_sample.tolist()) == sorted(finite.tolist())  # fewer than 20,000: all of them
    coarse = got.curve.filter(pl.col("block_size") == 64)  # 4 source blocks a block, a partial last group its own
    blocks4 = [[tuple(r[:min(j + 4, len(r))]) for j in range(0, len(r), 4)] for r in reqs]
    n4 = sum(map(len, blocks4))
    want4 = [lru_prefix_hits(blocks4, c if c is not None else 10 ** 9) / n4 for c in coarse["capacity_blocks"].to_list()]
    assert coarse["hit_rate"].to_list() == pytest.approx(want4, abs=1e-12)


def test_block_size_estimated_and_given_as_numpy(tmp_path):
    """Input tokens off the blocks (no size fits 99 % of rows): the size estimated from the
    median tokens per block, as numpy estimates it; and a given size kept."""
    table, _ = session_trace(n_sessions=120, seed=7)
    inp = table["input_tokens"].to_numpy()
    noisy = table.set_column(table.schema.get_field_index("input_tokens"), "input_tokens",
                             pa.array((inp * 1.7).astype(np.int32)))
    path = written(tmp_path, noisy)
    got, want = on_duckdb(path), analyze(path)
    assert got.values["block_size_basis"] == want.values["block_size_basis"] == "estimated"
    assert_same(got, want)
    given = on_duckdb(path, block_size=8)
    assert_same(given, analyze(path, block_size=8))
    assert given.values["block_size_basis"] == "given"


def test_fit_file_reuse_models_unchanged_on_duckdb(tmp_path):
    """`fit --engine duckdb` (the SQL fit) hands its reuse analysis to the session and prefix
    models: the same models as the streamed fit's own analysis (the session model's statistics by
    SQL aggregates: within 1e-12, relative)."""
    from servetrace.bundle import fit, fit_sql
    from servetrace.settings import Settings
    from servetrace.stages.engine import Engine
    from test_session_sql import assert_close

    table, _ = session_trace(n_sessions=150, seed=9)
    path = written(tmp_path, table)
    got, want = fit_sql.fit_file(path, Settings(), Engine()), fit.fit_bundle(tmp_path)
    assert got["sessions"]["source"] == "inferred from prefix chains" and got["prefix"]["groups"]["tokens"]
    assert_close(want["sessions"], got["sessions"])
    assert got["prefix"] == want["prefix"]
