"""`servetrace fit --engine spark`: the set-based bundle fit (sql/fit/) on local Spark gives DuckDB's
bundle, every number within float tolerance (the engines sum in different orders), every string
and list length equal. tests/test_fit_sql.py holds the SQL form equal to the streamed fit on DuckDB."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("pyspark", reason="the spark extra is not installed (pip install 'servetrace[spark]')")
if shutil.which("java") is None:
    pytest.skip("no Java runtime for Spark (.ci/run installs openjdk-17-jre-headless)", allow_module_level=True)

from servetrace.bundle import fit_sql  # noqa: E402
from servetrace.settings import FitSettings, Settings  # noqa: E402
from servetrace.stages.engine import Engine  # noqa: E402
from tests.conftest import run_cli  # noqa: E402
from tests.test_fit_sql import write_trace  # noqa: E402

SPARK = Engine("spark", "local[2]")
REL = 1e-6  # both engines fit the same sums; only the order of floating additions differs


def assert_close(a, b, path: str = "") -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), path
        for k in a:
            if k != "created_at":
                assert_close(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_close(x, y, f"{path}/{i}")
    elif isinstance(a, float) and not isinstance(b, bool):
        assert b == pytest.approx(a, rel=REL, abs=1e-9, nan_ok=True), (path, a, b)
    else:
        assert a == b, (path, a, b)


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    """Request tables: many clients (some merged into "(other)") with ties, idle windows and
    failures; reasoning lengths; multimodal lengths."""
    w = tmp_path_factory.mktemp("spark_fit")
    rng = np.random.default_rng(11)
    t = np.sort(np.floor(rng.exponential(3.0, 5000).cumsum()))
    t[2500:] += 7000.0
    n = len(t)
    for name in ("clients", "reason", "images"):
        (w / name).mkdir()
    write_trace(w / "clients" / "requests.parquet", t, client_id=rng.choice([f"c{i}" for i in range(9)], n).tolist(),
                input_tokens=rng.integers(1, 400, n).tolist(), output_tokens=rng.integers(0, 50, n).tolist(),
                failed=(rng.random(n) < 0.05).tolist())
    out = rng.integers(1, 2000, n)
    write_trace(w / "reason" / "requests.parquet", t, model=rng.choice(["m1", "m2"], n).tolist(),
                input_tokens=rng.integers(1, 999, n).tolist(), output_tokens=out.tolist(),
                reason_tokens=(out * rng.random(n)).astype(int).tolist())
    images = rng.integers(0, 4, n)
    write_trace(w / "images" / "requests.parquet", t, service=rng.choice(["s1", "s2"], n).tolist(),
                input_tokens=(images * 200 + rng.integers(0, 500, n)).tolist(),
                output_tokens=rng.integers(1, 300, n).tolist(), image_count=images.tolist(),
                image_tokens=(images * 200 + (images == 2)).tolist())
    return w


@pytest.mark.parametrize("name", ["clients", "reason", "images"])
def test_spark_bundle_equals_duckdb(traces, name):
    settings = Settings(fit=FitSettings(max_clients=5, ks_sample=500))
    path = traces / name / "requests.parquet"
    a = fit_sql.fit_file(path, settings, Engine())
    b = fit_sql.fit_file(path, settings, SPARK)
    assert len(a["clients"]) > 1 and "arrival_model" in a
    assert_close(a, b)


def test_fit_command_on_spark(traces, tmp_path):
    """The documented form, in its own process: `servetrace fit DIR --engine spark --spark-master
    local[2] --spark-conf K=V`, equal to `servetrace fit DIR`; bad options are one-line errors."""
    d = tmp_path / "c"
    shutil.copytree(traces / "clients", d)
    run_cli("fit", d, "--json", check=True)
    a = json.loads((d / "bundle.json").read_text())
    proc = run_cli("fit", d, "--engine", "spark", "--spark-master", "local[2]",
                   "--spark-conf", "spark.sql.shuffle.partitions=3", "--json", check=True)
    assert json.loads(proc.stdout)["clients"] == len(a["clients"])
    b = json.loads((d / "bundle.json").read_text())
    # the streamed fit (DuckDB's default) and the SQL fit on Spark: the same bundle
    assert_close({k: v for k, v in a.items() if k != "arrival_model"}, {k: v for k, v in b.items() if k != "arrival_model"})
    assert b["arrival_model"]["chosen"] == a["arrival_model"]["chosen"]
    bad = run_cli("fit", d, "--engine", "spark", "--spark-conf", "novalue")
    assert bad.returncode == 2 and "expected KEY=VALUE" in bad.stderr and "Traceback" not in bad.stderr
    mixed = run_cli("fit", d, "--spark-master", "local[1]")
    assert mixed.returncode == 2 and "go with --engine spark" in mixed.stderr


def test_a_top_k_per_group_is_cut_before_its_shuffle(traces):
    """fit_ks_sample's `row_number() over (partition by client ...) <= k` ships each partition's top
    k rows (Spark's WindowGroupLimit before the exchange), not every row, once the connection has
    been given a k above Spark's default threshold of 1,000."""
    from servetrace.spark.connection import SparkConnection
    from servetrace.spark.session import spark_session

    con = SparkConnection(spark_session("local[2]").newSession(), traces / "clients" / "requests.parquet")
    query = ("select * from (select client_id, row_number() over (partition by client_id order by arrival_s) as k "
             "from requests) where k <= 5000")

    def limits() -> int:
        return con.spark.sql(query)._jdf.queryExecution().executedPlan().toString().count("WindowGroupLimit")

    assert limits() == 0
    con.set_variables({"fit_ks_sample": 5000, "iat_floor_s": 0.001})
    assert limits() == 2  # partial (before the exchange) and final


def test_a_fit_releases_its_tables(traces, monkeypatch):
    """The fit's tables (cached rows, checkpoint blocks and the views holding their plans, which
    carry every table's lineage) are released when `fit_on` returns, before the session and agent
    models run on the same driver heap; what was there before the fit stays. A cursor's `close`
    (characterize's gap thread) leaves the connection's tables."""
    from servetrace.spark.connection import SparkConnection

    def state(con) -> tuple:
        spark = con.spark
        views = frozenset(t.name for t in spark.catalog.listTables() if t.isTemporary)
        return views, spark._jsparkSession.sharedState().cacheManager().isEmpty(), _stored(spark)

    seen = {}
    fit_, on = fit_sql._fit, fit_sql.fit_on

    def inner(con, *args):
        out = fit_(con, *args)
        seen["inside"] = state(con)
        return out

    def outer(con, *args, **kw):
        seen["before"] = state(con)
        out = on(con, *args, **kw)
        seen["after"] = state(con)
        if isinstance(con, SparkConnection):  # a cursor's close leaves them
            con.sql("select 1").arrow()
            cursor = con.cursor()
            con.run_sql("fit_clients", "table")
            cursor.close()
            seen["cursor"] = state(con)
        return out

    monkeypatch.setattr(fit_sql, "_fit", inner)
    monkeypatch.setattr(fit_sql, "fit_on", outer)
    fit_sql.fit_file(traces / "clients" / "requests.parquet", Settings(fit=FitSettings(max_clients=5, ks_sample=500)), SPARK)
    views, empty, blocks = seen["inside"]
    # the tables are checkpoints (blocks), none cached
    assert {"fit_clients", "fit_rows", "fit_midranks", "fit_bins", "fit_window_params"} <= views and empty and blocks - seen["before"][2]
    # nothing built in the fit stays (an older unreferenced RDD may be cleaned meanwhile by Spark's context cleaner)
    assert seen["after"][:2] == seen["before"][:2] and seen["after"][2] <= seen["before"][2]
    views, _, blocks = seen["cursor"]
    assert "fit_clients" in views and blocks - seen["after"][2]


def test_a_local_driver_heap_is_a_quarter_of_the_machine():
    """A local master runs every task in the driver: its heap is a quarter of the machine's memory,
    4 to 16 GB, unless `--spark-conf spark.driver.memory=...` says otherwise."""
    import os

    from servetrace.spark.session import local_driver_memory, spark_session

    gib = 2**30
    assert [local_driver_memory(n * gib) for n in (2, 8, 23.4, 24, 40, 64, 1024)] == \
        ["4g", "4g", "6g", "6g", "10g", "16g", "16g"]
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert spark_session("local[2]").sparkContext.getConf().get("spark.driver.memory") == local_driver_memory(total)


def test_fit_tables_plan_from_their_rows(traces):
    """On Spark a table another query reads is a local checkpoint, so no query over it repeats its
    lineage (cached, fit_cross_ranks' plan had 21,355 nodes at 1 M rows); an aggregate only the
    driver reads is a view, of which nothing is kept."""
    from servetrace import grouping
    from servetrace.bundle.fit import source_of
    from servetrace.stages import sql
    from servetrace.stages.context import Context, sql_variables
    from servetrace.stages.quality import trace_profile

    settings = Settings(fit=FitSettings(max_clients=5, ks_sample=500))
    path = traces / "reason" / "requests.parquet"
    with SPARK.connect(path) as con:
        before = _stored(con.spark)
        profile = trace_profile(con)
        ctx = Context(settings, profile, grouping.from_profile(profile, None), {}, False)
        sql.set_variables(con, sql_variables(ctx))
        sql.run_sql(con, "stg_requests")
        fit_sql._fit(con, settings, ctx.grouping, source_of(path), None)  # its tables kept (fit_on releases them)
        con.cursor().close()  # characterize's gap thread closes its cursor: the checkpoints stay readable
        assert con.sql("select count(*) from fit_rows").fetchall()[0][0] == 5000
        kept = ["fit_clients", "fit_length_counts", "fit_midranks", "fit_rows"]
        assert len(con._cached) == len(kept)
        for name in kept:
            plan = con.spark.table(name)._jdf.queryExecution().optimizedPlan().toString()
            assert "LogicalRDD" in plan and "parquet" not in plan.lower() and "Window" not in plan, (name, plan)
        cross = con.spark.table("fit_cross_ranks")._jdf.queryExecution().optimizedPlan()
        assert cross.toString().count("LogicalRDD") >= 1 and "InMemoryRelation" not in cross.toString()
        assert len(_stored(con.spark) - before) == len(kept)
        spark = con.spark
    assert not _stored(spark) - before  # the checkpoints' blocks released with the connection


def _stored(spark) -> frozenset[int]:
    """The ids of the RDDs holding stored blocks (cached rows or local checkpoints)."""
    return frozenset(info.id() for info in spark.sparkContext._jsc.sc().getRDDStorageInfo())


def test_a_checkpoint_directory_makes_the_tables_reliable_checkpoints(traces, tmp_path, monkeypatch):
    """With `spark.checkpoint.dir` set, the fit's tables are written there (a query over them then
    survives the loss of an executor), the bundle is the DuckDB engine's as with local checkpoints,
    and a released table's files are deleted."""
    from servetrace.spark.session import spark_session

    settings = Settings(fit=FitSettings(max_clients=5, ks_sample=500))
    path = traces / "clients" / "requests.parquet"
    spark = spark_session("local[2]")
    context = spark.sparkContext._jsc.sc()
    written = lambda: sorted(p.name for p in tmp_path.rglob("rdd-*"))  # a reliable checkpoint's directory
    seen = {}
    fit_ = fit_sql._fit

    def inner(con, *args):
        out = fit_(con, *args)
        seen["inside"] = written()
        seen["local"] = _stored(con.spark)  # RDDs holding blocks: a local checkpoint's, or a cache's
        return out

    monkeypatch.setattr(fit_sql, "_fit", inner)
    spark.sparkContext.setCheckpointDir(str(tmp_path))
    try:
        before = _stored(spark)
        bundle = fit_sql.fit_file(path, settings, SPARK)
    finally:
        getattr(context, "checkpointDir_$eq")(spark._jvm.scala.Option.apply(None))
    assert not context.getCheckpointDir().isDefined()
    assert len(seen["inside"]) >= 4 and not seen["local"] - before  # the fit's tables written, none in block stores
    assert written() == []
    monkeypatch.undo()
    assert_close(fit_sql.fit_file(path, settings, Engine()), bundle)
