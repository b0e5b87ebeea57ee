"""The seeded uniforms of stg_requests (`u`, `u_jitter`): a portable hash both engines compute bit
for bit, so samples and de-rounded arrivals are the same rows and numbers on DuckDB and Spark.

Checked against an independent numpy implementation (uint64 arithmetic with masks: MurmurHash3's
32-bit finalizer over the row number and a key of the seed), for row numbers past 2^32 and 2^62 and
negative seeds; uniform and independent by test; and equal on local Spark. The row stream's own
32-bit numpy form (pipeline/rows/uniforms.py) is held equal to DuckDB's."""

from __future__ import annotations

import shutil

import numpy as np
import pyarrow as pa
import pytest
from scipy import stats

from servetrace.resources import SQL_DIR
from servetrace.stages.sql import sql_text

M32 = np.uint64(0xFFFFFFFF)
ROWS = np.r_[np.arange(100_000), [2**31, 2**32 - 1, 2**32, 2**32 + 5, 2**40 + 7, 2**62 + 3, 2**63 - 1]]


def reference(rows: np.ndarray, seed: int) -> np.ndarray:
    r = np.asarray(rows, dtype=np.uint64)
    key = (np.uint64(seed % 2**32) * np.uint64(0x61C88647) + np.uint64(0x85EBCA6B)) & M32
    h = (((r & M32) ^ key) + ((r >> np.uint64(32)) * np.uint64(0x61C88647) & M32)) & M32
    h ^= h >> np.uint64(16)
    h = (h * np.uint64(0x85EBCA6B)) & M32
    h ^= h >> np.uint64(13)
    h = (h * np.uint64(0xC2B2AE35)) & M32
    h ^= h >> np.uint64(16)
    return h / 2.0**32


def _requests(rows: np.ndarray) -> pa.Table:
    n = len(rows)
    return pa.table({"file_row_number": pa.array(rows, pa.int64()), "arrival_s": pa.array(np.arange(n, dtype=float)),
                     **{c: pa.nulls(n, pa.string()) for c in ("client_id", "session_id", "model", "service")},
                     **{c: pa.array(np.ones(n, np.int32)) for c in ("input_tokens", "output_tokens", "reason_tokens",
                                                                   "image_count", "image_tokens")},
                     "latency_s": pa.array(np.ones(n)), "failed": pa.array(np.zeros(n, bool))})


def _variables(seed: int) -> dict:
    return {"group_ids": "", "group_by": "all", "group_model": False, "group_service": False, "t0_s": 0.0,
            "window_s": 600.0, "seed": seed}


def duckdb_uniforms(rows: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    import duckdb

    con = duckdb.connect()
    con.register("requests", _requests(rows))
    con.execute((SQL_DIR / "macros.sql").read_text())
    for key, value in _variables(seed).items():
        con.execute(f"set variable {key} = ?", [value])
    out = con.sql(f"select u, u_jitter from ({sql_text('stg_requests')}) order by row_id").fetchnumpy()
    return out["u"], out["u_jitter"]


@pytest.mark.parametrize("seed", [0, 7, -3, 2**40])
def test_duckdb_equals_the_reference(seed):
    u, jitter = duckdb_uniforms(ROWS, seed)
    assert np.array_equal(u, reference(ROWS, seed)) and np.array_equal(jitter, reference(ROWS, seed + 1))


@pytest.mark.parametrize("seed", [0, 7, -3, 2**40, 2**32 - 1])
def test_the_row_stream_numpy_uniforms_equal_duckdb(seed):
    """The row stream computes u and u_jitter from the row numbers (rows/uniforms.py): the same bits."""
    from servetrace.arrays import Scratch
    from servetrace.rows.uniforms import seeded_uniform

    u, jitter = duckdb_uniforms(ROWS, seed)
    rows, work = ROWS.astype(np.int64), Scratch()
    assert np.array_equal(seeded_uniform(rows, seed, work=work), u)
    assert np.array_equal(seeded_uniform(rows, seed + 1, work=work), jitter)
    low = rows[:100_000]  # no row number past 2^32: the high part's step left out
    assert np.array_equal(seeded_uniform(low, seed, np.empty(len(low)), work), u[:100_000])


@pytest.mark.parametrize("seed,p", [(0, 0.01), (7, 0.3), (-3, 1.0), (2**40, 1e-4)])
def test_the_sampled_rows_drawn_in_numpy_are_the_sql_ones(seed, p):
    """stg_sample_rows as DuckDB draws it (`sampled_rows`, a chunk at a time, chunks smaller than
    the table and not dividing it) holds the rows of its SQL, where u < sample_p, in order."""
    import duckdb

    from servetrace.rows.uniforms import sampled_rows

    n = 100_000
    con = duckdb.connect()
    con.register("requests", _requests(ROWS[:n]))
    con.execute((SQL_DIR / "macros.sql").read_text())
    for key, value in {**_variables(seed), "sample_p": p}.items():
        con.execute(f"set variable {key} = ?", [value])
    con.execute(f"create view stg_requests as {sql_text('stg_requests')}")
    want = con.sql(f"select row_id from ({sql_text('stg_sample_rows')}) order by row_id").fetchnumpy()["row_id"]
    got = sampled_rows(n, seed, p, chunk=30_001)
    assert got.dtype == np.int64 and np.array_equal(got, want)
    assert abs(len(got) - n * p) <= 5 * np.sqrt(n * p * (1 - p)) + 1  # a sample of about n x p


def test_uniform_and_independent():
    u, jitter = duckdb_uniforms(ROWS[:100_000], 0)
    other, _ = duckdb_uniforms(ROWS[:100_000], 1000)
    for x in (u, jitter, other):
        assert x.min() >= 0 and x.max() < 1
        assert stats.kstest(x, "uniform").pvalue > 1e-3
    # correlations of independent uniforms over 1e5 rows: standard error 0.0032
    for a, b in ((u, jitter), (u, other), (u[:-1], u[1:])):
        assert abs(np.corrcoef(a, b)[0, 1]) < 0.015
    assert len(np.unique(u)) > 99_990  # 2^32 values: a few collisions at most


def test_spark_equals_duckdb():
    pytest.importorskip("pyspark", reason="the spark extra is not installed")
    if shutil.which("java") is None:
        pytest.skip("no Java runtime for Spark")
    from servetrace.rows.uniforms import sampled_rows
    from servetrace.spark.session import spark_session
    from servetrace.spark.transpile import to_spark_steps

    spark = spark_session()
    spark.createDataFrame(_requests(ROWS).to_pandas()).createOrReplaceTempView("requests")
    for seed in (0, -3):
        *steps, (_, final) = to_spark_steps("stg_requests", sql_text("stg_requests"), _variables(seed))
        for view, query in steps:
            spark.sql(query).createOrReplaceTempView(view)
        got = spark.sql(final).orderBy("row_id").select("u", "u_jitter").toArrow()
        u, jitter = duckdb_uniforms(ROWS, seed)
        assert np.array_equal(got.column("u").to_numpy(), u)
        assert np.array_equal(got.column("u_jitter").to_numpy(), jitter)
        # the sample's rows (stg_sample_rows) by Spark's SQL are those DuckDB draws in numpy
        spark.sql(final).createOrReplaceTempView("stg_requests")
        *steps, (_, rows) = to_spark_steps("stg_sample_rows", sql_text("stg_sample_rows"),
                                           {**_variables(seed), "sample_p": 0.01})
        for view, query in steps:
            spark.sql(query).createOrReplaceTempView(view)
        sampled = spark.sql(rows).orderBy("row_id").toArrow().column("row_id").to_numpy()
        sampled = sampled[sampled < 100_000]  # ROWS: 0 .. 99,999 and a few past 2^31
        assert np.array_equal(sampled, sampled_rows(100_000, seed, 0.01)) and len(sampled) > 800
