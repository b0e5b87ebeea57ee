"""The session model's requests (sql/sessions/, bundle/session_sql.py) on local Spark equal DuckDB's
row for row, the sampled sessions too (the same hash of each session's first row), so the SQL fit's
session and prefix models, with their per-client models, and the arrival model on the sessions'
starts are the same numbers on both engines; so are the session model's statistics, made from SQL
aggregates on each engine (bundle/session_stats.py: within 1e-12, relative).
tests/test_session_sql.py holds DuckDB's SQL form equal to the Polars frame."""

from __future__ import annotations

import shutil

import numpy as np
import polars as pl
import pytest

pytest.importorskip("pyspark", reason="the spark extra is not installed (pip install 'servetrace[spark]')")
if shutil.which("java") is None:
    pytest.skip("no Java runtime for Spark (.ci/run installs openjdk-17-jre-headless)", allow_module_level=True)

from servetrace import grouping, io  # noqa: E402
from servetrace.bundle import fit_sql, session_sql  # noqa: E402
from servetrace.bundle.session_stats import sessions_on  # noqa: E402
from servetrace.settings import FitSettings, SessionModelSettings, Settings  # noqa: E402
from servetrace.stages import sql  # noqa: E402
from servetrace.stages.context import Context, sql_variables  # noqa: E402
from servetrace.stages.engine import Engine  # noqa: E402
from servetrace.stages.quality import trace_profile  # noqa: E402
from test_session_sql import (COLUMNS, assert_close, bundle_of, client_session_trace, connected,  # noqa: E402
                              sessions_table)

SPARK = Engine("spark", "local[2]")


@pytest.fixture(scope="module")
def spark():
    from servetrace.spark.session import spark_session

    session = spark_session()
    yield session
    session.stop()


def test_frame_equal_on_spark(spark, tmp_path):
    """Session ids with nulls, ties, clients, 1,500 of the ~4,000 requests sampled: the same rows."""
    from servetrace.spark.connection import SparkConnection

    path = tmp_path / "requests.parquet"
    io.write_parquet(path, sessions_table(), {})
    settings, rows = Settings(group_by="client_id"), io.parquet_rows(path)
    names = session_sql.client_names(path, bundle_of(["c0", "c2", "(other)"]), "(other)")
    t = SessionModelSettings(client_session_min=60, by_turns_min=50, session_rows=1_500)
    windows = (np.arange(0.0, 4_000.0, 600.0), 600.0)
    frames, models = [], []
    with connected(path, settings) as con:
        assert session_sql.has_keys(con, None, True)
        session_sql.register_clients(con, names)
        frames.append(session_sql.frame_on(con, rows, 1_500))
        models.append(sessions_on(con, rows, t, windows, len(names[0])))
    con = SparkConnection(spark, path)
    profile = trace_profile(con)
    sql.set_variables(con, sql_variables(Context(settings, profile, grouping.from_profile(profile, "client_id"), {}, False)))
    sql.run_sql(con, "stg_requests")
    assert session_sql.has_ids(con) and session_sql.has_keys(con, None, True)
    session_sql.register_clients(con, names)
    frames.append(session_sql.frame_on(con, rows, 1_500))
    models.append(sessions_on(con, rows, t, windows, len(names[0])))
    # the statistics plan from checkpoints of the sample (stages/sql.py materialize): no query of
    # theirs repeats the lineage of stg_requests, the keys and the windows (a plan that the driver
    # analyzed and kept for every statistic filled its heap)
    for name in ("session_requests", "session_scoped"):
        plan = spark.table(name)._jdf.queryExecution().optimizedPlan().toString()
        assert "LogicalRDD" in plan and "parquet" not in plan.lower() and "Window" not in plan, (name, plan)
    want, got = frames
    assert 0 < got.height < rows and got.height == want.height
    for c in [*COLUMNS, "client"]:
        assert got[c].cast(pl.Float64).equals(want[c].cast(pl.Float64)), c
    # the session model's statistics as SQL aggregates (bundle/session_stats.py): quantiles by
    # Spark's percentile, the lognormal KS and normal scores by sql/macros.sql's normal_cdf and
    # normal quantile, the turns' survival counts, per client: DuckDB's within 1e-12
    assert models[0]["clients"] is not None and models[0]["think_s"]["fit"] is not None
    assert models[0]["by_turns"] is not None and models[0]["window"]["returns"] is not None
    assert_close(models[0], models[1])
    # the arrival model on the sessions' starts (their counts per bin, pooled and per dominant
    # client, and first arrivals by SQL on Spark), as DuckDB's SQL fit makes it
    bundle = fit_sql.fit_file(path, settings, Engine())
    assert bundle["arrival_model"]["fitted_on"] == "session starts"
    model = session_sql.start_arrival_model_on({k: v for k, v in bundle.items() if k != "arrival_model"}, con, path,
                                               settings.fit.arrival_model)["arrival_model"]
    assert_close(model, bundle["arrival_model"])


def test_fit_session_and_prefix_models_equal_on_spark(spark, tmp_path):
    """`fit --engine spark` on sessions inferred from prefix chains under shared prompts, 3 clients,
    the sessions sampled: session model, per-client models, tail and prefix model (per-client
    groups) equal DuckDB's SQL fit (the session model within 1e-12, relative)."""
    path = client_session_trace(tmp_path / "requests.parquet")
    t = SessionModelSettings(client_session_min=60, by_turns_min=50, session_rows=600)
    settings = Settings(group_by="client_id", fit=FitSettings(sessions=t))
    want = fit_sql.fit_file(path, settings, Engine())
    got = fit_sql.fit_file(path, settings, SPARK)
    assert want["sessions"]["clients"] is not None and want["prefix"]["clients"] is not None
    assert want["sessions"]["sessions"] < 300  # of about 400: sampled
    assert_close(want["sessions"], got["sessions"])
    assert got["prefix"] == want["prefix"]
    assert_close(got["arrival_model"], want["arrival_model"])
