"""The set-based bundle fit (sql/fit/, the Spark engine's form) equals the streamed row fit.

Both run on DuckDB here, over traces built to hit the edges the stream handles: ties on a 1 s grid
(floored inter-arrivals), idle windows, clients whose gaps span windows, more clients than
max_clients (merged into "(other)"), failures, reasoning and multimodal lengths (half-way ratios
and tokens per image, rounded half to even), a single request, and a real trace from ../shared."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from servetrace import grouping, io
from servetrace.bundle import fit, fit_sql
from servetrace.errors import ServetraceError
from servetrace.schema import CANONICAL
from servetrace.settings import FitSettings, Settings, ingest_of
from servetrace.stages import sql
from servetrace.stages.context import Context, sql_variables
from servetrace.stages.engine import Engine
from servetrace.stages.quality import trace_profile


def write_trace(path, arrival: np.ndarray, **cols) -> str:
    n = len(arrival)
    table = {f.name: pa.nulls(n, f.type) for f in CANONICAL}
    table["arrival_s"] = pa.array(arrival, pa.float64())
    for name, values in cols.items():
        table[name] = pa.array(values, CANONICAL.field(name).type)
    io.write_parquet(path, pa.table(table, schema=CANONICAL), {})
    return path


def both(path, settings: Settings | None = None) -> tuple[dict, dict]:
    """(the streamed fit's bundle, the SQL fit's) of a request table, without the reuse models."""
    settings, path = settings or Settings(), Path(path)
    stream = fit.with_arrival_model(fit._fit_file(path, fit.fit_columns(path, settings.group_by), settings, path), path,
                                    settings.fit.arrival_model)
    with sql.connect(path) as con:
        profile = trace_profile(con)
        ctx = Context(settings, profile, grouping.from_profile(profile, settings.group_by), io.parquet_metadata(path))
        sql.set_variables(con, sql_variables(ctx))
        sql.run_sql(con, "stg_requests")
        sets = fit_sql.fit_on(con, settings, ctx.grouping, fit.source_of(path), ingest_of(io.parquet_metadata(path)))
    return stream, sets


def assert_same(a, b, path: str = "") -> None:
    """Equal structure; numbers equal to 1e-9 (relative, or absolute near 0); the same strings."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), (path, set(a) ^ set(b) if isinstance(b, dict) else b)
        for k in a:
            if k != "created_at":
                assert_same(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), (path, len(a), len(b) if isinstance(b, (list, tuple)) else b)
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}/{i}")
    elif isinstance(a, bool) or a is None or isinstance(a, str):
        assert a == b, (path, a, b)
    elif isinstance(a, (int, float, np.integer, np.floating)):
        assert isinstance(b, (int, float, np.integer, np.floating)) and not isinstance(b, bool), (path, a, b)
        if math.isnan(a):
            assert math.isnan(b), (path, a, b)
        else:
            assert b == pytest.approx(a, rel=1e-9, abs=1e-12), (path, a, b)
    else:
        assert a == b, (path, a, b)


def test_ties_idle_windows_and_many_clients(tmp_path):
    rng = np.random.default_rng(3)
    t = np.sort(np.floor(rng.exponential(3.0, 8000).cumsum()))  # whole seconds: many ties
    t[4000:] += 7000.0  # idle windows in the middle
    clients = rng.choice([f"c{i}" for i in range(12)], len(t), p=np.r_[[0.3, 0.2, 0.1], np.full(9, 0.4 / 9)])
    path = write_trace(tmp_path / "r.parquet", t, client_id=clients.tolist(),
                       input_tokens=rng.integers(1, 400, len(t)).tolist(),
                       output_tokens=rng.integers(0, 50, len(t)).tolist(),
                       failed=(rng.random(len(t)) < 0.05).tolist())
    settings = Settings(fit=FitSettings(max_clients=6, ks_sample=300))
    a, b = both(path, settings)
    assert [c["id"] for c in a["clients"]][-1] != "(other)" and "(other)" in {c["id"] for c in a["clients"]}
    assert a["failures"]["rate"] > 0 and "arrival_model" in a
    assert_same(a, b)


def test_reasoning_ratios_half_way_and_a_constant_field(tmp_path):
    rng = np.random.default_rng(4)
    n = 3000
    t = np.cumsum(rng.gamma(0.5, 2.0, n))
    out = rng.integers(1, 2000, n)
    out[:500] = 1000  # ratio x 500 lands on .5: rounded half to even
    reason = np.where(rng.random(n) < 0.8, rng.integers(0, 3000, n), 0)
    reason[:500] = np.arange(500) * 2 + 1
    path = write_trace(tmp_path / "r.parquet", t, model=rng.choice(["m1", "m2"], n).tolist(),
                       input_tokens=np.full(n, 64).tolist(), output_tokens=out.tolist(), reason_tokens=reason.tolist(),
                       failed=(out == 3).tolist())
    a, b = both(path)
    assert a["category"] == "reason"
    assert_same(a, b)


def test_multimodal_tokens_per_image(tmp_path):
    rng = np.random.default_rng(5)
    n = 2500
    t = np.sort(rng.uniform(0, 20_000, n))
    images = rng.integers(0, 4, n)
    image_tokens = images * rng.integers(100, 300, n) + (images == 2)  # some x.5 per image
    path = write_trace(tmp_path / "r.parquet", t, service=rng.choice(["s1", "s2", "s3"], n).tolist(),
                       input_tokens=(image_tokens + rng.integers(0, 500, n)).tolist(),
                       output_tokens=rng.integers(1, 300, n).tolist(), image_count=images.tolist(),
                       image_tokens=image_tokens.tolist())
    a, b = both(path)
    assert a["category"] == "multimodal"
    assert_same(a, b)


def test_a_coarse_clock(tmp_path):
    """Arrivals floored to whole seconds, several a second: the CVs under the clock need each
    group's requests per tick, squared and summed (fit_sums' two aggregates, the stream's
    TickSquares)."""
    rng = np.random.default_rng(11)
    n = 6000
    t = np.floor(np.sort(rng.uniform(0, 3000, n)))
    path = write_trace(tmp_path / "r.parquet", t, client_id=rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1]).tolist(),
                       input_tokens=rng.integers(1, 99, n).tolist(), output_tokens=rng.integers(1, 99, n).tolist())
    from servetrace.stats import clock

    assert clock.clock_of_head(t, Settings()) == 1.0
    assert_same(*both(path))


def test_one_request_and_grouping_by_all(tmp_path):
    path = write_trace(tmp_path / "one.parquet", np.array([12.5]), input_tokens=[10], output_tokens=[3])
    a, b = both(path)
    assert a["clients"][0]["requests"] == 1
    assert_same(a, b)
    rng = np.random.default_rng(6)
    t = np.sort(rng.uniform(0, 5000, 900))
    path = write_trace(tmp_path / "all.parquet", t, client_id=rng.choice(["a", "b"], 900).tolist(),
                       input_tokens=rng.integers(1, 99, 900).tolist(), output_tokens=rng.integers(1, 99, 900).tolist())
    assert_same(*both(path, Settings(group_by="all", window_s=300)))


def test_real_trace(tmp_path):
    from tests.conftest import shared_file

    from servetrace.ingest import ingest_trace
    from servetrace.settings import IngestSettings

    summary = ingest_trace(shared_file("azure2023", "AzureLLMInferenceTrace_conv.csv"), tmp_path, IngestSettings())
    assert_same(*both(summary.get("requests") or tmp_path / "requests.parquet"))


def test_fit_file_on_duckdb_matches_the_stream_and_refuses_an_empty_table(tmp_path):
    rng = np.random.default_rng(8)
    t = np.sort(rng.uniform(0, 4000, 600))
    write_trace(tmp_path / "requests.parquet", t, client_id=rng.choice(["a", "b"], 600).tolist(),
                input_tokens=rng.integers(1, 99, 600).tolist(), output_tokens=rng.integers(1, 99, 600).tolist())
    assert_same(fit.fit_bundle(tmp_path), fit_sql.fit_file(tmp_path / "requests.parquet", Settings(), Engine()))
    empty = tmp_path / "empty"
    empty.mkdir()
    write_trace(empty / "requests.parquet", np.zeros(0))
    with pytest.raises(ServetraceError, match="no requests to fit"):
        fit_sql.fit_file(empty / "requests.parquet", Settings(), Engine())


def test_the_head_of_a_sorted_table_is_its_first_rows(tmp_path):
    """fit_head_first (row_id < N, no sort) holds fit_head's rows (order by arrival, row id, limit N)
    where fit_head_sorted says the table is in arrival order, a tie across the cut included; a
    table out of order is not, and fit_head takes its N first arrivals (numpy's lexsort)."""
    arrival = np.repeat(np.arange(100.0), 4)  # rows 148-151 arrive together: the cut at 150 splits them
    shuffled = np.random.default_rng(4).permutation(arrival)
    for name, values, in_order in (("sorted", arrival, True), ("shuffled", shuffled, False)):
        path = write_trace(tmp_path / f"{name}.parquet", values)
        with sql.connect(path) as con:
            profile = trace_profile(con)
            ctx = Context(Settings(), profile, grouping.from_profile(profile, Settings().group_by),
                          io.parquet_metadata(path))
            sql.set_variables(con, {**sql_variables(ctx), "fit_head_rows": 150})
            sql.run_sql(con, "stg_requests")
            assert bool(sql.table(con, "fit_head_sorted")["head_sorted"][0]) is in_order
            head = sql.table(con, "fit_head", "arrival_s, row_id")
            first = np.lexsort((np.arange(len(values)), values))[:150]
            assert head["row_id"].to_list() == first.tolist() and head["arrival_s"].to_list() == values[first].tolist()
            if in_order:
                assert sql.table(con, "fit_head_first", "arrival_s, row_id").equals(head)
