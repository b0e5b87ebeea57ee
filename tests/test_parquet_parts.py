"""A canonical table written as a directory of Parquet parts (Spark's output) reads as the same
table as one file: the io helpers, the stages' `requests` view with its row numbers, and every
reader downstream (the stages, the bundle fit with its session, prefix and agent models)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

from servetrace import io
from servetrace.settings import Settings

sys.path.insert(0, str(Path(__file__).parent))
from reuse_traces import client_session_trace  # noqa: E402

META = {"servetrace.format": "test", "servetrace.source": "trace.csv", "servetrace.sha256": "ab" * 32}


def _table() -> pa.Table:
    """Clients with sessions (ids and turns written out) and KV-cache block ids: every model's input."""
    table, truth = client_session_trace(seed=3)
    session = pa.array([f"s{s}" for s in truth["session"]], pa.string())
    turn = pa.array(truth["turn"].to_list(), pa.int32())
    table = table.set_column(table.schema.get_field_index("session_id"), "session_id", session)
    return table.set_column(table.schema.get_field_index("turn"), "turn", turn)


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    """(one file, a directory of three parts of unequal size, several row groups each)."""
    root = tmp_path_factory.mktemp("parts")
    table = _table()
    single = root / "file" / "requests.parquet"
    io.write_parquet(single, table, META)
    parts = root / "dir" / "requests.parquet"
    parts.mkdir(parents=True)
    cuts = [0, 700, 1900, table.num_rows]
    assert table.num_rows > cuts[2]
    for i, (lo, hi) in enumerate(zip(cuts, cuts[1:])):  # Spark's names: file order = name order
        pq.write_table(table.slice(lo, hi - lo), parts / f"part-{i:05d}-c000.snappy.parquet", row_group_size=300)
    (parts / io.PARQUET_SIDECAR).write_text(json.dumps(META))
    (parts / "_SUCCESS").write_text("")
    return single, parts


def test_io_reads_a_directory_as_the_file(tables):
    single, parts = tables
    assert len(io.parquet_parts(parts)) == 3 and io.parquet_parts(single) == [single]
    assert io.parquet_rows(parts) == io.parquet_rows(single) == pq.read_metadata(single).num_rows
    assert io.parquet_columns(parts) == io.parquet_columns(single)
    assert io.parquet_metadata(parts) == io.parquet_metadata(single) == META
    assert io.read_parquet(parts).equals(io.read_parquet(single))
    assert io.read_parquet(parts, ["arrival_s", "hash_ids"]).equals(pq.read_table(single, columns=["arrival_s", "hash_ids"]))
    batches = list(io.parquet_batches(parts, ["arrival_s"], 256))
    assert pa.Table.from_batches(batches).column(0).equals(pq.read_table(single, columns=["arrival_s"]).column(0))


def test_all_null_columns_from_the_statistics_of_every_part_and_row_group(tables, tmp_path, monkeypatch):
    """A column is all null when every row group of every part says so; one value in one row group
    of one part, or a row group without statistics, keeps it out. The sessions' codes of an
    all-null session_id are None without a value read."""
    from servetrace.bundle.agents import has_turns
    from servetrace.rows import read
    from servetrace.stages.prefix import session_codes

    single, parts = tables
    table = pq.read_table(single)
    want = {c for c in table.column_names if table.column(c).null_count == table.num_rows}
    assert read.all_null(single) == read.all_null(parts) == want and "session_id" not in want
    assert has_turns(single) and has_turns(parts)
    none = table.set_column(table.schema.get_field_index("session_id"), "session_id", pa.nulls(table.num_rows, pa.string()))
    one = none.set_column(table.schema.get_field_index("session_id"), "session_id",
                          pa.array([None] * (table.num_rows - 1) + ["s"], pa.string()))
    for name, t, stats in (("none", none, True), ("one", one, True), ("unknown", none, False)):
        d = tmp_path / name
        d.mkdir()
        for i, (lo, hi) in enumerate(zip([0, 700], [700, t.num_rows])):
            pq.write_table(t.slice(lo, hi - lo), d / f"part-{i:05d}.parquet", row_group_size=300, write_statistics=stats)
        assert ("session_id" in read.all_null(d)) is (name == "none"), name
        assert has_turns(d) is (name != "none"), name
    read_parquet = io.read_parquet
    monkeypatch.setattr(io, "read_parquet", lambda *a, **k: pytest.fail("an all-null column was read"))
    assert session_codes(tmp_path / "none") is None
    monkeypatch.setattr(io, "read_parquet", read_parquet)
    assert session_codes(tmp_path / "unknown") is None  # read, and found all null
    assert session_codes(tmp_path / "one")[-1] == table.num_rows - 1


def test_a_directory_without_parts_is_a_clear_error(tmp_path):
    from servetrace.errors import ServetraceError

    with pytest.raises(ServetraceError, match="without Parquet parts"):
        io.parquet_columns(tmp_path)


def test_stage_view_numbers_rows_across_parts(tables):
    """DuckDB's `file_row_number` restarts in each part; the view numbers rows across them."""
    from servetrace.stages import sql

    got = {}
    for path in tables:
        with sql.connect(path) as con:
            got[path] = con.sql("select file_row_number, arrival_s, session_id from requests "
                                "order by file_row_number").pl()
    a, b = got.values()
    assert a.equals(b)
    assert a["file_row_number"].to_list() == list(range(a.height))


def test_stages_and_bundle_equal_from_parts(tables):
    """characterize's stages and the streamed bundle fit (sessions, prefix and agent models
    included) give the same numbers from the parts as from the file."""
    from servetrace.bundle.fit import fit_bundle
    from servetrace.characterization import characterize_requests

    single, parts = tables
    docs = [characterize_requests(p, Settings(), scratch_dir=p.parent) for p in tables]
    (fa, ta), (fb, tb) = docs
    for doc in (fa, fb):
        doc.pop("created_at", None)
    assert fa == fb and "absent" not in fa["prefix"] and "absent" not in fa["sessions"]
    assert sorted(ta) == sorted(tb)
    for name in ta:  # sums over other batch boundaries: equal to the last bits
        assert_frame_equal(ta[name], tb[name], rel_tol=1e-12, abs_tol=1e-12)
    a, b = ({k: v for k, v in fit_bundle(p.parent).items() if k != "created_at"} for p in tables)
    assert "sessions" in a and "prefix" in a and a["sessions"]["source"] == "session ids"
    _assert_close(a, b)


def _assert_close(a, b, at: str = "") -> None:
    assert type(a) is type(b), at
    if isinstance(a, dict):
        assert a.keys() == b.keys(), at
        for key in a:
            _assert_close(a[key], b[key], f"{at}/{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), at
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_close(x, y, f"{at}/{i}")
    elif isinstance(a, float):
        assert b == pytest.approx(a, rel=1e-12, abs=1e-12, nan_ok=True), at
    else:
        assert a == b, at


def test_grouping_codes_of_several_columns_read_side_by_side_equal_one_at_a_time(tables):
    """The group columns' codes (read a column per thread) name each row's value ('(none)' for a
    null), in a file and in parts alike, and equal the codes of each column read alone."""
    from servetrace.rows.codes import load_codes

    single, parts = tables
    table = pq.read_table(single)
    names = ["model", "service", "client_id"]
    for path in (single, parts):
        together = load_codes(path, table.num_rows, names)
        for name in names:
            alone = load_codes(path, table.num_rows, [name])[name]
            got = together[name]
            assert got.levels == alone.levels and (got.codes == alone.codes).all()
            want = [v if v is not None else "(none)" for v in table.column(name).to_pylist()]
            assert [got.levels[c] for c in got.codes.tolist()] == want
