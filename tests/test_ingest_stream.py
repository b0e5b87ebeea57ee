"""The ingest stream's own work beside DuckDB's: NUL bytes found in the handed-over strings (the
record read again with the SQL checks, so every reason stays the first one in check order), the
outlying timestamps judged from the first and last arrivals written, the null columns over one
buffer, and the row groups gathered from smaller batches."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import run_cli
from servetrace.ingest import stream
from servetrace.ingest.outliers import ends_needed, outlying_cuts
from servetrace.schema import CANONICAL
from servetrace.settings import OutlierSettings


def _ingest(path, out) -> dict:
    proc = run_cli("ingest", path, "--out", out, "--json")
    assert proc.returncode == 0, proc.stderr
    s = json.loads(proc.stdout)
    assert s["rows_read"] == s["rows_kept"] + s["rows_rejected"]
    return s


# --- NUL bytes -------------------------------------------------------------------------------

def test_nul_bytes_keep_the_first_reason_in_check_order(tmp_path):
    """A NUL in a kept record's text refuses it; one in a record refused by an earlier check keeps
    that reason; one in a record whose later check fails (latency) is refused for the NUL."""
    rows = [f"{t},c{t % 3},m,{10 + t},5,0.5" for t in range(3000)]
    rows[10] = "10,c\x001,m,20,5,0.5"  # kept otherwise: the NUL
    rows[700] = "-7,c1,m\x00,20,5,0.5"  # negative timestamp comes first
    rows[1500] = "1500,c1,m\x00x,20,5,abc"  # the NUL comes before the latency's check
    rows[2999] = "2999,c2,\x00,20,5,0.5"
    path = tmp_path / "t.csv"
    path.write_text("timestamp,client_id,model,input_tokens,output_tokens,latency_s\n" + "\n".join(rows) + "\n")
    s = _ingest(path, tmp_path / "o")
    assert s["reject_reasons"] == {"NUL byte in client_id": 1, "NUL byte in model": 2, "negative timestamp": 1}
    rejects = pq.read_table(tmp_path / "o" / "rejects.parquet").to_pydict()
    assert list(zip(rejects["line"], rejects["reason"])) == [
        (12, "NUL byte in client_id"), (702, "negative timestamp"), (1502, "NUL byte in model"),
        (3001, "NUL byte in model")]
    kept = pq.read_table(tmp_path / "o" / "requests.parquet")
    assert kept.num_rows == 2996 and "\x00" not in "".join(kept.column("model").to_pylist())


def test_nul_byte_in_a_mapped_service_is_refused(tmp_path):
    """BurstGPT's Log Type maps to a service name: a NUL in it is still found."""
    rows = [f"{t},ChatGPT,10,5,15,Conversation log" for t in range(50)]
    rows[20] = "20,ChatGPT,10,5,15,API\x00 log"
    path = tmp_path / "b.csv"
    path.write_text("Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n" + "\n".join(rows) + "\n")
    s = _ingest(path, tmp_path / "o")
    assert s["reject_reasons"] == {"NUL byte in service": 1} and s["rows_kept"] == 49


@pytest.mark.parametrize("large", [False, True])
def test_holds_nul_reads_only_the_values_of_a_slice(large):
    values = ["ab", None, "", "c\x00d", "ef", "g"] * 3
    arr = pa.array(values, pa.large_string() if large else pa.string())
    table = pa.table({"s": arr})
    for start in range(len(values)):
        for stop in range(start, len(values) + 1):
            piece = table.slice(start, stop - start)
            truth = any(v is not None and "\x00" in v for v in values[start:stop])
            assert stream._holds_nul(piece, ("s",)) is truth


# --- outlying timestamps from the stream's ends ---------------------------------------------------

def _written(tmp_path, x: np.ndarray):
    path = tmp_path / "a.parquet"
    pq.write_table(pa.table({"arrival_s": x}), path)
    return path


@pytest.mark.parametrize("seed", range(6))
def test_ends_give_the_cuts_the_written_file_gives(tmp_path, seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(600, 5000))
    x = np.sort(rng.uniform(0, 3600, n)).round(int(rng.integers(0, 3)))
    low_far, high_far = int(rng.integers(0, 4)), int(rng.integers(0, 4))
    x[:low_far] = np.sort(rng.uniform(-9e6, -8e6, low_far))  # outlying at the start
    x[n - high_far:] = np.sort(rng.uniform(9e8, 1e9, high_far))  # and at the end
    ends = stream.Ends(keep=int(rng.integers(5, 2 * n)))
    cuts = np.sort(rng.choice(np.arange(1, n), size=int(rng.integers(0, 12)), replace=False))
    for piece in np.split(x, cuts):
        ends.add(piece)
    con = duckdb.connect()
    path = _written(tmp_path, x)
    got = outlying_cuts(con, path, n, OutlierSettings(), ends)
    assert got == outlying_cuts(con, path, n, OutlierSettings())
    assert (got[0] is not None) == (low_far > 0) and (got[1] is not None) == (high_far > 0)
    if low_far:
        assert np.count_nonzero(x < got[0]) == low_far
    if high_far:
        assert np.count_nonzero(x > got[1]) == high_far


def test_ends_held_and_not_held():
    ends = stream.Ends(keep=4)
    for piece in (np.arange(3.0), np.arange(3.0, 5.0), np.arange(5.0, 12.0)):
        ends.add(piece)
    assert ends.first(4).tolist() == [0, 1, 2, 3] and ends.first(2).tolist() == [0, 1]
    assert ends.last(4).tolist() == [8, 9, 10, 11] and ends.last(1).tolist() == [11]
    assert ends.first(5) is None and ends.last(12) is None  # more than held: the caller reads the file
    m = ends_needed(10_000)
    assert m is not None and stream.Ends().keep > m  # the default holds enough for 10 k rows


# --- null columns and row groups -------------------------------------------------------------------

def test_null_columns_equal_pyarrows_nulls():
    nulls = stream._Nulls(CANONICAL)
    for n in (5, 1, 1000, 3):
        for f in list(CANONICAL) + [pa.field("h", pa.list_(pa.int64()))]:
            arr = nulls.null(f.type, n)
            arr.validate(full=True)
            assert arr.equals(pa.nulls(n, f.type)) and arr.null_count == n


def test_row_groups_gather_the_batches(tmp_path, monkeypatch):
    """Batches of 30 rows handed over, row groups of 100 written: the rows in file order."""
    from servetrace.ingest import ingest_trace

    monkeypatch.setattr(stream, "READ_ROWS", 30)
    monkeypatch.setattr(stream, "BATCH_ROWS", 100)
    n = 1037
    lines = [f"{t},c{t % 11},m,{t % 97},{t % 5}" for t in range(n)]
    (tmp_path / "t.csv").write_text("timestamp,client_id,model,input_tokens,output_tokens\n" + "\n".join(lines) + "\n")
    ingest_trace(tmp_path / "t.csv", tmp_path / "o")
    f = pq.ParquetFile(tmp_path / "o" / "requests.parquet")
    assert [f.metadata.row_group(i).num_rows for i in range(f.metadata.num_row_groups)] == [100] * 10 + [37]
    table = f.read()
    assert table.column("arrival_s").to_pylist() == [float(t) for t in range(n)]
    assert table.column("client_id").to_pylist() == [f"c{t % 11}" for t in range(n)]
    assert table.column("input_tokens").to_pylist() == [t % 97 for t in range(n)]
    assert table.column("session_id").null_count == n and table.schema.equals(CANONICAL)


def test_a_late_quoted_newline_in_a_file_with_short_rows_is_read_serially(tmp_path):
    """DuckDB's parallel reader refuses a quoted newline beside padded short rows; found past the
    first batches the error comes through the Arrow stream, and the file is read again serially."""
    n = 400_000
    lines = [f"{i},c{i % 5},m,{i % 90 + 1},{i % 7 + 1}" for i in range(n)]
    lines.insert(300_000, '300000,"c\n1",m,5')  # a short row (no output_tokens) with a quoted newline
    path = tmp_path / "t.csv"
    path.write_text("timestamp,client_id,model,input_tokens,output_tokens\n" + "\n".join(lines) + "\n")
    s = _ingest(path, tmp_path / "o")
    assert (s["rows_read"], s["rows_kept"], s["reject_reasons"]) == (n + 1, n, {"missing output_tokens": 1})
    rejects = pq.read_table(tmp_path / "o" / "rejects.parquet").to_pydict()
    assert rejects["line"] == [300_002]  # header and 300,000 rows before it
    kept = pq.read_table(tmp_path / "o" / "requests.parquet", columns=["input_tokens"]).column(0).to_pylist()
    assert kept == [i % 90 + 1 for i in range(n)]


# --- text values trimmed by the stream --------------------------------------------------------

def _padded_values(seed: int, controls: bool = True) -> list[str | None]:
    """Values padded at either end (or both, or only) with characters around every space separator
    and some that are not (tab, zero-width space, BOM, line separator), CJK, empty, null."""
    rng = np.random.default_rng(seed)
    pads = [chr(c) for c in range(0, 0x250)] + [chr(c) for c in (
        0x1680, 0x180E, *range(0x2000, 0x2030), 0x205F, 0x2060, 0x3000, 0x3001, 0xFEFF, 0x4E2D)]
    pads = [p for p in pads if p != "\x00" and (controls or p >= " " or p == "\t")]
    cores = ["m", "gpt-4", "中文", "a b", "x\u00a0y", ""]
    values: list[str | None] = []
    for _ in range(6000):
        k = rng.integers(0, 8)
        if k == 0:
            values.append(None)
        elif k == 1:
            values.append(rng.choice(cores))
        else:
            left = "".join(rng.choice(pads, rng.integers(0, 3)))
            right = "".join(rng.choice(pads, rng.integers(0, 3)))
            values.append(left + str(rng.choice(cores)) + right)
    return values


@pytest.mark.parametrize("seed", [0, 1])
def test_trimmed_equals_duckdbs_trim(seed):
    """`_trimmed` gives DuckDB's `nullif(trim(v), '')` value for value: chunks that need the trim and
    chunks that do not, slices (an offset into the buffers), nulls."""
    values = _padded_values(seed)
    clean = [f"c{i}" if i % 7 else None for i in range(4000)]
    arr = pa.array(values + clean, pa.string())
    want = duckdb.sql("select nullif(trim(v), '') as v from (select unnest($1) as v)",
                      params=[values + clean]).fetchall()
    want = [v for (v,) in want]
    col = pa.chunked_array([arr.slice(0, 2500), arr.slice(2500, 4000), arr.slice(6500), arr.slice(7000, 100)])
    got = stream._trimmed(col)
    assert [c for c in got.chunks[2:]] == [c for c in col.chunks[2:]]  # nothing to trim: the chunks as they were
    assert got.to_pylist() == want + want[7000:7100]
    assert not stream._needs_trim(pa.array(["a", None, "b c"]).slice(1))
    assert stream._needs_trim(pa.array(["a", None, ""]).slice(1))
    assert stream._needs_trim(pa.array(["a", "b\u3000"], pa.large_string()))


def test_padded_text_ingests_as_the_sql_trim_made_it(tmp_path, monkeypatch):
    """A trace whose text values are padded, empty or only spaces: the stream's trim writes what the
    SQL trim writes (the same rows, values and nulls), the rejects unchanged."""
    import servetrace.ingest as ingest

    values = _padded_values(2, controls=False)  # a CSV line holds no line break
    rows = []
    for i, v in enumerate(values):
        text = "" if v is None else '"' + v.replace('"', '""') + '"'
        rows.append(f"{i},{text},m{i % 5}\u00a0,{10 + i},{5 if i % 11 else 'x'}")
    path = tmp_path / "padded.csv"
    path.write_text("timestamp,client_id,model,input_tokens,output_tokens\n" + "\n".join(rows) + "\n", encoding="utf-8")
    new = ingest.ingest_trace(path, tmp_path / "new")
    monkeypatch.setattr(ingest, "reader_trimmed", lambda spec: ())  # the SQL trims every value
    old = ingest.ingest_trace(path, tmp_path / "old")
    assert new["rows_read"] == len(values) == new["rows_kept"] + new["rows_rejected"]
    assert {k: v for k, v in new.items() if k not in ("requests", "rejects")} == \
        {k: v for k, v in old.items() if k not in ("requests", "rejects")}
    assert new["rows_rejected"] > 0
    for name in ("requests.parquet", "rejects.parquet"):
        a, b = pq.read_table(tmp_path / "new" / name), pq.read_table(tmp_path / "old" / name)
        assert a.equals(b)
        assert a.schema.metadata == b.schema.metadata
    kept = pq.read_table(tmp_path / "new" / "requests.parquet").column("model").to_pylist()
    assert set(kept) == {f"m{i}" for i in range(5)}
