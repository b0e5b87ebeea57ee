"""The set-based gap statistics (sql/gaps/, the Spark engine's form) equal the numpy gap stream.

Both run on DuckDB here, over traces built to hit every edge the stream handles: ties (whole-second
stamps), idle windows, de-rounding jitter that moves requests across window edges, clients whose
own gaps span windows, a single request, and exact duplicate rows."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from polars.testing import assert_frame_equal

from servetrace import grouping, io
from servetrace.rows import stream as row_stream
from servetrace.schema import CANONICAL
from servetrace.settings import Settings
from servetrace.stages import gaps, gaps_sql, sql
from servetrace.stages.context import Context, sql_variables
from servetrace.stages.quality import trace_profile


def _trace(path, arrival: np.ndarray, clients: np.ndarray | None = None, models: np.ndarray | None = None):
    n = len(arrival)
    cols = {name: pa.nulls(n, typ) for name, typ in ((f.name, f.type) for f in CANONICAL)}
    cols["arrival_s"] = pa.array(arrival, pa.float64())
    cols["input_tokens"] = pa.array(np.full(n, 100), pa.int32())
    cols["output_tokens"] = pa.array(np.full(n, 10), pa.int32())
    cols["failed"] = pa.array(np.zeros(n, bool))
    if clients is not None:
        cols["client_id"] = pa.array(clients.astype(str))
    if models is not None:
        cols["model"] = pa.array(models.astype(str))
    io.write_parquet(path, pa.table(cols, schema=CANONICAL), {})
    return path


def _both(path, jitter_s: float):
    settings = Settings()
    with sql.connect(path) as con:
        profile = trace_profile(con)
        ctx = Context(settings, profile, grouping.from_profile(profile, settings.group_by), io.parquet_metadata(path))
        variables = {**sql_variables(ctx), "jitter_s": jitter_s}
        sql.set_variables(con, variables)
        sql.run_sql(con, "stg_requests")
        codings = gaps.stage_codes(path, ctx.rows, ctx.grouping)
        stream = row_stream.one_pass(con, ctx.rows, codings, ctx.t0_s, ctx.t1_s, settings.window_s, jitter_s,
                                     ctx.sample_p, settings.stages)
        sets = gaps_sql.compute(con, ctx.rows, ctx.t0_s, ctx.t1_s, settings.window_s)
    return stream, sets


def _assert_equal(a: gaps.GapResults, b: gaps.GapResults) -> None:
    assert a.summary.keys() == b.summary.keys()
    for key, value in a.summary.items():
        assert b.summary[key] == (pytest.approx(value, rel=1e-9) if isinstance(value, float) else value), key
    for name in ("longest", "window_gaps", "window_sample"):
        assert_frame_equal(getattr(a, name), getattr(b, name), check_dtypes=False, rel_tol=1e-9)
    for name in ("group_gaps", "model_gaps", "service_gaps"):
        assert_frame_equal(getattr(a, name).sort("level"), getattr(b, name).sort("level"), check_dtypes=False,
                           rel_tol=1e-9)
    np.testing.assert_allclose(a.iat_sample, b.iat_sample, rtol=1e-12)


@pytest.mark.parametrize("jitter_s", [0.0, 1.0])
def test_whole_second_stamps_with_ties_and_idle_windows(tmp_path, jitter_s):
    rng = np.random.default_rng(1)
    t = np.sort(np.floor(rng.exponential(4.0, 6000).cumsum()))  # many ties on a 1 s grid
    t[3000:] += 5000.0  # several idle windows in the middle
    clients = rng.choice(["a", "b", "c", "rare"], len(t), p=[0.6, 0.3, 0.0995, 0.0005])
    path = _trace(tmp_path / "r.parquet", t, clients=clients)
    a, b = _both(path, jitter_s)
    assert a.summary["zero_gaps"] > 100 and a.window_gaps["gaps"].to_numpy().min() == 0  # the edges are hit
    _assert_equal(a, b)


def test_jitter_moves_requests_across_window_edges(tmp_path):
    rng = np.random.default_rng(2)
    # arrivals crowded at window edges (multiples of 600 s), 10 s grid de-rounded by 10 s of jitter
    edges = rng.integers(1, 40, 4000) * 600.0
    t = np.sort(edges + np.round(rng.normal(0, 15, len(edges)) / 10) * 10)
    models = rng.choice(["m1", "m2"], len(t))
    path = _trace(tmp_path / "r.parquet", t - t.min(), models=models)
    a, b = _both(path, 10.0)
    _assert_equal(a, b)


def test_duplicate_rows_and_a_single_request(tmp_path):
    t = np.array([0.0, 1.0, 1.0, 1.0, 2.5, 700.0, 700.0])
    a, b = _both(_trace(tmp_path / "dup.parquet", t, clients=np.array(list("abbbaab"))), 0.0)
    assert a.summary["duplicate_rows"] == 2  # (1.0, b) three times; the two at 700 s differ by client
    _assert_equal(a, b)
    one_a, one_b = _both(_trace(tmp_path / "one.parquet", np.array([5.0])), 0.0)
    assert one_a.summary["gaps"] == 0
    _assert_equal(one_a, one_b)


def test_real_sample(tmp_path):
    from tests.conftest import shared_file

    from servetrace.ingest import ingest_trace
    from servetrace.settings import IngestSettings

    summary = ingest_trace(shared_file("azure2023", "AzureLLMInferenceTrace_conv.csv"), tmp_path, IngestSettings())
    a, b = _both(summary.get("requests") or tmp_path / "requests.parquet", 0.001)
    _assert_equal(a, b)
