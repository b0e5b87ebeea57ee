"""`characterize --engine spark` (local Spark from the pyspark wheel) gives DuckDB's findings and tables.

Every number is equal within float tolerance (the engines add in other orders), including those
drawn from the seeded uniforms (fit samples, de-rounded arrivals, the fits made from them): the
uniforms are a portable hash both engines compute bit for bit (tests/test_uniforms.py).
"""

from __future__ import annotations

import json
import shutil

import polars as pl
import pytest

pytest.importorskip("pyspark", reason="the spark extra is not installed (pip install 'servetrace[spark]')")
if shutil.which("java") is None:
    pytest.skip("no Java runtime for Spark (.ci/run installs openjdk-17-jre-headless)", allow_module_level=True)

from servetrace.characterization import characterize  # noqa: E402
from servetrace.stages.engine import Engine  # noqa: E402
from tests.conftest import ROOT, run_cli, shared_file  # noqa: E402

SAMPLE = ROOT / "data" / "samples" / "burstgpt_sample.csv"
# Raw traces, each ingested and characterized by each engine: BurstGPT (40 k rows, clients,
# failures) and Mooncake (JSON lines, KV-cache block ids: the prefix stage and the bundle's
# session and prefix models read Spark's directory of parts).
TRACES = [SAMPLE, shared_file("mooncake", "synthetic_trace.jsonl")]


@pytest.fixture(scope="module", params=TRACES, ids=[p.stem for p in TRACES])
def both(request, tmp_path_factory):
    out = tmp_path_factory.mktemp("engines")
    ran = {name: characterize(request.param, out / name, quiet=True, engine=Engine(name)) for name in ("duckdb", "spark")}
    # each engine ingested the raw trace itself: Spark's table is a directory of parts
    assert (out / "spark" / "requests.parquet").is_dir() and (out / "duckdb" / "requests.parquet").is_file()
    for key in ("rows_read", "rows_kept", "rows_rejected", "format"):
        assert ran["spark"][key] == ran["duckdb"][key], key
    return out / "duckdb", out / "spark", request.param


def _numbers(doc, path=""):
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _numbers(value, f"{path}/{key}")
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from _numbers(value, f"{path}/{i}")
    elif isinstance(doc, (int, float)) and not isinstance(doc, bool):
        yield path, float(doc)


def test_findings_equal_between_engines(both):
    a, b = (json.loads((d / "findings.json").read_text()) for d in both[:2])
    for doc in (a, b):
        doc.pop("created_at", None)
    na, nb = dict(_numbers(a)), dict(_numbers(b))
    assert na.keys() == nb.keys()
    assert len(na) > 100 and any("best_fit" in k for k in na)
    assert any("derounded" in k for k in na) if both[2] == SAMPLE else nb["/prefix/blocks"] > 0
    for key in na:
        assert nb[key] == pytest.approx(na[key], rel=1e-6, abs=1e-9, nan_ok=True), key


def test_tables_equal_between_engines(both):
    a_dir, b_dir = (d / "tables" for d in both[:2])
    names = sorted(p.stem for p in a_dir.glob("*.parquet"))
    assert names == sorted(p.stem for p in b_dir.glob("*.parquet"))
    for name in names:
        a, b = pl.read_parquet(a_dir / f"{name}.parquet"), pl.read_parquet(b_dir / f"{name}.parquet")
        assert a.columns == b.columns, name
        assert a.height == b.height, name
        for col in a.columns:
            x, y = a[col], b[col]
            if x.dtype.is_numeric():  # nulls where DuckDB's are, the values within float tolerance
                assert x.is_null().to_list() == y.is_null().to_list(), (name, col)
                x, y = x.drop_nulls(), y.drop_nulls()
                assert y.cast(pl.Float64).to_list() == pytest.approx(x.cast(pl.Float64).to_list(), rel=1e-9,
                                                                      abs=1e-12, nan_ok=True), (name, col)
            else:
                assert x.to_list() == y.to_list(), (name, col)


def test_bundle_equal_between_engines(both):
    """The bundle: DuckDB's streamed row fit, Spark's set-based SQL fit (sql/fit/); the same sums in
    other orders, so every number within float tolerance, everything else equal."""
    from tests.test_spark_fit import assert_close

    a, b = (json.loads((d / "bundle.json").read_text()) for d in both[:2])
    assert len(a["clients"]) > 1 if both[2] == SAMPLE else "prefix" in a and "sessions" in a
    assert "arrival_model" in a
    assert_close(a, b)


def test_cli_engine_options(tmp_path):
    bad = run_cli("characterize", SAMPLE, "--out", tmp_path / "x", "--engine", "flink")
    assert bad.returncode == 2 and "--engine 'flink'" in bad.stderr and "Traceback" not in bad.stderr
    conf = run_cli("characterize", SAMPLE, "--out", tmp_path / "y", "--engine", "spark", "--spark-conf", "novalue")
    assert conf.returncode == 2 and "expected KEY=VALUE" in conf.stderr
    mixed = run_cli("characterize", SAMPLE, "--out", tmp_path / "z", "--spark-master", "local[1]")
    assert mixed.returncode == 2 and "go with --engine spark" in mixed.stderr


def test_prefix_reuse_with_hash_ids_equal(tmp_path):
    """hash_ids (a list column) through posexplode: the per-window prefix reuse table of a Mooncake trace."""
    from servetrace.ingest import ingest_trace
    from servetrace.settings import IngestSettings, Settings
    from servetrace.spark.connection import SparkConnection
    from servetrace.spark.session import spark_session
    from servetrace.stages import sql

    summary = ingest_trace(shared_file("mooncake", "synthetic_trace.jsonl"), tmp_path, IngestSettings())
    requests = summary.get("requests") or tmp_path / "requests.parquet"
    meta = pl.read_parquet(requests, columns=["arrival_s"])["arrival_s"]
    variables = {"t0_s": float(meta.min()), "window_s": float(Settings().window_s)}
    with sql.connect(requests) as con:
        sql.set_variables(con, variables)
        a = sql.table(con, "prefix_reuse", order_by="window_idx")
    spark = SparkConnection(spark_session(), requests)
    spark.set_variables(variables)
    b = sql.table(spark, "prefix_reuse", order_by="window_idx")
    assert a.height > 1 and int(a["seen_blocks"].sum()) > 0
    for col in a.columns:
        assert b[col].cast(pl.Float64).to_list() == pytest.approx(a[col].cast(pl.Float64).to_list(), rel=1e-12), col
