"""The block reuse analysis' SQL (sql/reuse/) on local Spark equals DuckDB's number for number:
the prefix ids, the SHARDS sample and the distance sample are drawn by the same portable hash, so
the curves, the histogram and the sample are the same bits (reuse/aggregates.py)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pyspark", reason="the spark extra is not installed (pip install 'servetrace[spark]')")

from reuse_traces import session_trace  # noqa: E402
from servetrace.reuse.aggregates import analyze_on  # noqa: E402
from servetrace.reuse.analysis import analyze, with_tree  # noqa: E402
from servetrace.settings import ReuseSettings  # noqa: E402
from test_reuse_sql import _scrambled, mooncake, on_duckdb, written  # noqa: E402,F401


@pytest.fixture(scope="module")
def spark():
    from servetrace.spark.session import spark_session

    return spark_session()


def on_spark(session, path, t: ReuseSettings = ReuseSettings()):
    from servetrace.spark.connection import SparkConnection

    return analyze_on(SparkConnection(session, path), t=t)


def assert_identical(got, want) -> None:
    assert got.values == want.values
    assert got.curve.equals(want.curve)
    assert got.distance_hist.equals(want.distance_hist)
    assert np.array_equal(got.distance_sample, want.distance_sample)


def test_shards_sample_equal_on_mooncake(spark, mooncake):
    """Mooncake (122 k references of 512 tokens, re-blocked to 2048) sampled to ~20 k: the same
    references kept, the same distances, the same sample."""
    small = ReuseSettings(exact_max=30_000, sampled_target=20_000)
    want = on_duckdb(mooncake, small)
    assert want.values["lru_method"] == "shards"
    assert_identical(on_spark(spark, mooncake, small), want)


def test_exact_equal_with_ids_over_int64(spark, tmp_path):
    """Sessions under shared prompts, block ids spread over the int64 range (past 2^32 and
    negative: the hash's bit operations), four block sizes, every reference."""
    table, _ = session_trace(n_sessions=60, seed=3)
    path = written(tmp_path, _scrambled(table))
    want = on_duckdb(path)
    assert want.values["lru_method"] == "exact" and want.values["block_sizes"] == [16, 64, 512, 2048]
    got = on_spark(spark, path)
    assert_identical(got, want)
    # with the prefix tree and groups read on the driver (the Spark prefix stage's reuse_of), every
    # value is numpy's (its curve is exact here)
    inp = table["input_tokens"].to_numpy().astype(np.int64)
    full, numpy = with_tree(got, path, inp, None, ReuseSettings()), analyze(path)
    assert full.values == numpy.values
    assert full.groups.equals(numpy.groups) and np.array_equal(full.session, numpy.session)


def test_fit_on_spark_reuse_models_equal(spark, tmp_path):
    """`fit --engine spark` takes the set-based reuse analysis: its session and prefix models (sessions
    inferred from prefix chains, shared-prefix groups) equal DuckDB's: the prefix model number for
    number, the session model (SQL aggregates on each engine) within 1e-12, relative."""
    from servetrace.bundle import fit_sql
    from servetrace.settings import Settings
    from servetrace.stages.engine import Engine
    from test_session_sql import assert_close

    table, _ = session_trace(n_sessions=60, seed=9)
    path = written(tmp_path, table)
    want = fit_sql.fit_file(path, Settings(), Engine())
    got = fit_sql.fit_file(path, Settings(), Engine("spark", "local[2]"))
    assert want["prefix"]["groups"]["tokens"]
    assert_close(want["sessions"], got["sessions"])
    assert got["prefix"] == want["prefix"]


def test_tree_and_groups_equal_on_spark(spark, tmp_path):
    """The prefix tree's shape, the shared-prefix groups (sessions inferred from prefix chains) and
    the prefix model with its owners by SQL on Spark (the prefix stage's reuse_of): DuckDB's, number
    for number, on the planted groups of test_tree_sql (a tie broken by the first request's row)."""
    from servetrace import grouping
    from servetrace.bundle import session_sql
    from servetrace.bundle.prefix_model import prefix_model_on
    from servetrace.reuse.tree_sql import with_groups
    from servetrace.settings import SessionModelSettings, Settings
    from servetrace.spark.connection import SparkConnection
    from servetrace.stages import sql
    from servetrace.stages.context import Context, sql_variables
    from servetrace.stages.quality import trace_profile
    from test_tree_sql import on_sql, planted_trace

    table, _ = planted_trace(seed=1, ids=False)
    path = written(tmp_path, table)
    want, want_model = on_sql(path, False)
    con = SparkConnection(spark, path)
    profile = trace_profile(con)
    sql.set_variables(con, sql_variables(Context(Settings(), profile, grouping.from_profile(profile, None), {}, False)))
    sql.run_sql(con, "stg_requests")
    got = analyze_on(con)
    assert session_sql.has_keys(con, got, False)
    with_groups(got, con, table.num_rows, False, 50, SessionModelSettings().max_groups)
    assert got.values["tree"] == want.values["tree"] and got.values["shared_prefix"] == want.values["shared_prefix"]
    assert got.groups.equals(want.groups) and want.groups["first_turns"].to_list() == [40, 25, 25, 10, 3]
    assert prefix_model_on(con, got, SessionModelSettings()) == want_model
