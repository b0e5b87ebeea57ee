"""The session model's requests as SQL (sql/sessions/, bundle/session_sql.py) on DuckDB equal the
Polars frame (bundle/sessions.py session_frame) row for row, sampled sessions included: both key a
session by its first request's row and keep it by the same 32-bit hash of that key, which is
stg_requests.sql's `u` of that row at seed 0. The bundle's session models (with per-client models)
made from the Polars frame and from the SQL aggregates over the SQL frame (bundle/session_stats.py)
are the same numbers within 1e-12, relative (sums and interpolations in another order)."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from servetrace import grouping, io
from servetrace.bundle import fit, fit_sql, session_sql
from servetrace.bundle.sessions import client_index, session_frame, session_hash
from servetrace.reuse.analysis import analyze
from servetrace.settings import FitSettings, SessionModelSettings, Settings
from servetrace.stages import sql
from servetrace.stages.context import Context, sql_variables
from servetrace.stages.engine import Engine
from servetrace.stages.prefix import session_codes
from servetrace.stages.quality import trace_profile
from reuse_traces import document_trace, session_trace
from test_stages_support import canonical

COLUMNS = ["session", "row", "arrival_s", "input_tokens", "output_tokens", "latency_s", "shared_tokens", "left_s",
           "turn", "turns", "first_in", "gap_s", "think_s", "growth", "new_prompt"]


def sessions_table(n_sessions: int = 900, seed: int = 5):
    """Sessions of 1-12 turns from 4 clients (a session can move to another client), some requests
    without a session id (each its own session), ties of arrival inside a session, latencies."""
    rng = np.random.default_rng(seed)
    turns = rng.geometric(0.3, n_sessions).clip(1, 12)
    start = np.cumsum(rng.exponential(2.0, n_sessions))
    sess = np.repeat(np.arange(n_sessions), turns)
    turn = np.concatenate([np.arange(k) for k in turns])
    arrival = np.round(start[sess] + turn * rng.exponential(20.0, len(sess)), 1)
    n = len(sess)
    sid = [None if rng.random() < 0.05 else f"s{s}" for s in sess]
    client = np.where(rng.random(n) < 0.1, rng.integers(0, 4, n), sess % 4)
    return canonical(arrival, session_id=sid, client_id=[f"c{c}" for c in client],
                     input_tokens=rng.integers(1, 3000, n), output_tokens=rng.integers(0, 400, n),
                     latency_s=np.where(rng.random(n) < 0.1, np.nan, rng.exponential(3.0, n)))


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    path = tmp_path_factory.mktemp("session_sql") / "requests.parquet"
    io.write_parquet(path, sessions_table(), {})
    return path


@contextmanager
def connected(path, settings: Settings):
    """A DuckDB connection with `stg_requests`, as the SQL fit makes it."""
    with sql.connect(path) as con:
        profile = trace_profile(con)
        ctx = Context(settings, profile, grouping.from_profile(profile, settings.group_by), {}, False)
        sql.set_variables(con, sql_variables(ctx))
        sql.run_sql(con, "stg_requests")
        yield con


def assert_close(a, b, path: str = "") -> None:
    """Equal structure and strings; floats within 1e-12 (sums taken in another order)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), path
        for k in a:
            assert_close(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_close(x, y, f"{path}/{i}")
    elif isinstance(a, float):
        assert b == pytest.approx(a, rel=1e-12, abs=1e-15, nan_ok=True), (path, a, b)
    else:
        assert a == b, (path, a, b)


def bundle_of(names: list[str]) -> dict:
    return {"group_by": "client_id", "clients": [{"id": c} for c in names]}


@pytest.mark.parametrize("max_rows", [10_000_000, 1_500])
def test_sql_frame_equals_polars_frame(trace, max_rows):
    settings = Settings(group_by="client_id")
    rows = io.parquet_rows(trace)
    bundle = bundle_of(["c0", "c2", "(other)"])
    want = session_frame(trace, session_codes(trace), None, max_rows)
    want = want.with_columns(turns=pl.len().over("session"), first_in=pl.col("input_tokens").first().over("session"))
    index = client_index(trace, bundle, "(other)")
    with connected(trace, settings) as con:
        assert session_sql.has_ids(con) and session_sql.has_keys(con, None, True)
        session_sql.register_clients(con, session_sql.client_names(trace, bundle, "(other)"))
        got = session_sql.frame_on(con, rows, max_rows)
    assert got.height == want.height and got.height > 0
    for c in COLUMNS:
        assert got[c].cast(pl.Float64).equals(want[c].cast(pl.Float64)), c
    # each request's own client, as client_index names it from the grouping columns (c1, c3: "(other)")
    assert np.array_equal(got["client"].to_numpy(), index[0][got["row"].to_numpy()])
    assert set(np.unique(got["client"].to_numpy())) == {0, 1, 2}
    if max_rows < rows:
        # whole sessions, about max_rows requests of them
        full = session_frame(trace, session_codes(trace), None, 10 ** 9).group_by("session").len()
        kept = got.group_by("session").agg(pl.col("turns").first(), pl.len())
        both = kept.join(full, on="session", suffix="_all")
        assert both.height == kept.height and (both["len"] == both["len_all"]).all() and (both["turns"] == both["len"]).all()
        assert 0.6 * max_rows < got.height < 1.4 * max_rows


def test_session_hash_is_stg_requests_uniform(trace):
    """The sampling hash of key k is stg_requests' `u` of row k at seed 0, times 2^32."""
    with connected(trace, Settings(seed=0)) as con:
        got = con.sql("select row_id, u from stg_requests order by row_id").pl()
    assert np.array_equal(session_hash(got["row_id"].to_numpy()), (got["u"].to_numpy() * 2 ** 32).astype(np.uint64))
    # a 32-bit hash past 2^32: the key's high half counts
    keys = np.array([5, 5 + (1 << 32), (1 << 40) + 3], np.int64)
    assert len(set(session_hash(keys).tolist())) == 3 and (session_hash(keys) < 2 ** 32).all()


@pytest.mark.parametrize("session_rows", [2_000_000, 1_500])
def test_sql_fit_session_models_equal_streamed_fit(trace, session_rows):
    """`fit_file` (the SQL fit, its session model by SQL aggregates) and `fit_bundle` (Polars over
    the frame) give the same session model, per-client models and tail, whole or sampled."""
    t = SessionModelSettings(client_session_min=60, session_rows=session_rows, by_turns_min=50)
    settings = Settings(group_by="client_id", fit=FitSettings(sessions=t))
    got, want = fit_sql.fit_file(trace, settings, Engine()), fit.fit_bundle(trace.parent, settings)
    assert got["sessions"]["source"] == "session ids"
    assert got["sessions"]["clients"] is not None and sum(m is not None for m in got["sessions"]["clients"]) >= 2
    assert got["sessions"]["window"]["returns"] is not None and got["sessions"]["by_turns"] is not None
    assert_close(want["sessions"], got["sessions"])
    # the arrival model, fitted on the sessions' starts (by SQL, and by Polars over their rows)
    assert got["arrival_model"] == want["arrival_model"]


def client_session_trace(path, n_sessions: int = 400):
    """`session_trace` (sessions inferred from prefix chains, shared system prompts) with each
    session's requests from one of 3 clients."""
    table, truth = session_trace(n_sessions=n_sessions, seed=4)
    clients = [f"c{s % 3}" for s in truth["session"].to_list()]
    table = table.set_column(table.schema.get_field_index("client_id"), "client_id",
                             pa.array(clients, table.schema.field("client_id").type))
    io.write_parquet(path, table, {})
    return path


def test_prefix_clients_and_inferred_sessions_by_sql(tmp_path):
    """Sessions inferred from prefix chains (the tree's arrays registered as `session_keys`), shared
    prefixes, per-client prefix models (each session's first client by SQL): the SQL fit's models
    are the streamed fit's."""
    path = client_session_trace(tmp_path / "requests.parquet")
    t = SessionModelSettings(client_session_min=60, by_turns_min=50)
    settings = Settings(group_by="client_id", fit=FitSettings(sessions=t))
    got, want = fit_sql.fit_file(path, settings, Engine()), fit.fit_bundle(tmp_path, settings)
    assert got["sessions"]["source"] == "inferred from prefix chains"
    assert got["prefix"]["clients"] is not None and sum(m is not None for m in got["prefix"]["clients"]) == 3
    assert got["sessions"]["clients"] is not None
    assert_close(want["sessions"], got["sessions"])
    assert got["prefix"] == want["prefix"]
    assert_close(got["arrival_model"], want["arrival_model"])  # an IAT CV differs in its last bit


@pytest.mark.parametrize("make", [session_trace, document_trace])
def test_chains_and_shared_prefixes_equal_numpy(tmp_path, make):
    """chain_parents.sql gives every request numpy's parent and reused blocks (reuse/chains.py),
    pointer jumping its session, session_shared.sql its shared-prefix tokens (reuse/tree.py): on
    sessions under shared prompts, and on documents returned to, where a request holding only a
    shared prefix's full blocks links to the next one that shares it."""
    table, _ = make(n_sessions=300, seed=2)
    path = tmp_path / "requests.parquet"
    io.write_parquet(path, table, {})
    want = analyze(path)
    n = len(want.parent)
    assert (want.parent >= 0).sum() > n // 3 and (want.shared_blocks > 0).sum() > n // 10
    with connected(path, Settings()) as con:
        assert session_sql.has_keys(con, want, False)
        parents = con.sql("select row_id, parent, reused from chain_parents").pl()
        keys = con.sql("select row_id, session from session_keys order by row_id").pl()
        shared = con.sql("select row_id, shared_tokens from session_shared").pl()
    parent, reused, tokens = np.full(n, -1), np.zeros(n, np.int64), np.zeros(n, np.int64)
    parent[parents["row_id"]], reused[parents["row_id"]] = parents["parent"], parents["reused"]
    tokens[shared["row_id"]] = shared["shared_tokens"]
    assert np.array_equal(parent, want.parent) and np.array_equal(reused, want.reused_blocks)
    assert np.array_equal(keys["row_id"].to_numpy(), np.arange(n)) and np.array_equal(keys["session"].to_numpy(), want.session)
    assert np.array_equal(tokens, want.shared_blocks * want.block_size)
