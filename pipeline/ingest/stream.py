"""One read of `typed`, in file order: kept rows to Parquet, refused record numbers beside them.

DuckDB parses and checks the records on every core and hands them over in Arrow batches; each
batch is split, counted and written whole (no loop over rows). Writing while DuckDB reads the
next batches costs less than materialising the parsed table and copying it out again.
On the way the stream collects what the summary needs: rows parsed / kept / refused, the first
and smallest kept arrival, whether arrivals ever go backwards, and the first and last kept arrivals
(in file order these are the smallest and largest when arrivals never go backwards: the outlying
timestamps are judged from them without reading the written arrivals again).
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from servetrace.arrays import numpy_of

BATCH_ROWS = 1 << 20  # rows of a Parquet row group
READ_ROWS = 1 << 17  # rows of a batch DuckDB hands over: its Arrow buffers are grown by reallocation,
# and a million rows' worth are fresh memory each batch (page faults); row groups gather eight
STREAM_BUFFER = "64MiB"  # what DuckDB may parse ahead of the batch being checked: its default (10 MiB)
# holds less than one batch, so its threads waited for every fetch (BurstGPT-shaped 10.31 M: -11 % wall)
REFUSED = pa.schema([("rec", pa.int64()), ("reason", pa.string())])


@dataclass
class StreamResult:
    parsed: int = 0
    kept: int = 0
    refused: int = 0
    lo: float | None = None  # smallest kept arrival, on the source clock
    shift: float = 0.0  # subtracted from every arrival written
    ordered: bool = True  # kept arrivals never go backwards in file order
    ends: Ends = field(default_factory=lambda: Ends())  # the first and last kept arrivals written
    nul: bool = False  # a NUL byte in a `nul_columns` value: the stream stopped there


class Ends:
    """The first and the last `keep` kept arrivals as written, in file order (copies: a view would
    hold its whole Arrow batch). 2^18 of each judge the outliers of traces up to 262 M rows."""

    def __init__(self, keep: int = 1 << 18):
        self.keep = keep
        self.head: list[np.ndarray] = []
        self.tail: deque[np.ndarray] = deque()
        self.held = self.tail_held = 0

    def add(self, x: np.ndarray) -> None:
        if self.held < self.keep:
            self.head.append(x[: self.keep - self.held].copy())
            self.held += len(self.head[-1])
        self.tail.append(x[-self.keep:].copy())
        self.tail_held += len(self.tail[-1])
        while self.tail_held - len(self.tail[0]) >= self.keep:
            self.tail_held -= len(self.tail.popleft())

    def first(self, k: int) -> np.ndarray | None:
        """The first k kept arrivals; None when more than are held."""
        return np.concatenate(self.head)[:k] if 0 < k <= self.held else None

    def last(self, k: int) -> np.ndarray | None:
        """The last k kept arrivals; None when more than are held."""
        return np.concatenate(self.tail)[-k:] if 0 < k <= self.tail_held else None


class _Writer:
    """A Parquet file opened on its first batch. Only the string columns are dictionary-encoded: a
    dictionary of a million distinct floats is built and then thrown away (a quarter of the write).
    A row group is encoded and written on the writer's own thread (pyarrow lets go of the GIL) while
    the stream checks the next batches: at most one row group is in flight, so memory stays bounded."""

    def __init__(self, path: Path, schema: pa.Schema, compression: str):
        self.path, self.schema, self.compression = path, schema, compression
        self.writer: pq.ParquetWriter | None = None
        self.pending: list[pa.Table] = []
        self.rows = 0
        self.thread: ThreadPoolExecutor | None = None
        self.job: Future | None = None

    def write(self, table: pa.Table) -> None:
        if self.writer is None:
            strings = [f.name for f in self.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
            self.writer = pq.ParquetWriter(self.path, self.schema, compression=self.compression, use_dictionary=strings,
                                             store_schema=False)  # metadata lives in the footer alone
        if not table.schema.equals(self.schema):  # a cast, even to the same schema, loads pyarrow.compute
            table = table.cast(self.schema)
        self.pending.append(table)
        self.rows += table.num_rows
        if self.rows >= BATCH_ROWS:
            self._flush()

    def _flush(self, last: bool = False) -> None:
        """Write the pending rows as row groups of BATCH_ROWS (the rest too when `last`)."""
        table = pa.concat_tables(self.pending)
        whole = table.num_rows if last else table.num_rows - table.num_rows % BATCH_ROWS
        self.wait()  # the previous row group written (its error raised here)
        self.thread = self.thread or ThreadPoolExecutor(1, thread_name_prefix="servetrace-write")
        self.job = self.thread.submit(self.writer.write_table, table.slice(0, whole), row_group_size=BATCH_ROWS)
        rest = table.slice(whole)
        self.pending, self.rows = ([rest] if rest.num_rows else []), rest.num_rows

    def wait(self) -> None:
        job, self.job = self.job, None
        if job is not None:
            job.result()

    def close(self, metadata: dict[str, str] | None = None) -> None:
        if self.writer is not None:
            if self.pending:
                self._flush(last=True)
            self.wait()
            if metadata:
                self.writer.add_key_value_metadata(metadata)
            self.writer.close()
        self.stop()

    def abandon(self) -> None:
        """Closed without waiting for a clean end: an unfinished write's error is dropped."""
        try:
            self.wait()
        except Exception:  # noqa: BLE001 - the stream's own error is the one raised
            pass
        if self.writer is not None:
            self.writer.close()
        self.stop()

    def stop(self) -> None:
        if self.thread is not None:
            self.thread.shutdown(wait=True)
            self.thread = None


class _Nulls:
    """The columns of `schema` a batch lacks (the source has none of them) as null arrays, all over
    one zeroed buffer made once (per-column `pa.nulls` zero-filled ~90 MB a million rows, and the
    pages touched cost more than the rest of the step): DuckDB would hand over a buffer of nulls per
    column and batch."""

    def __init__(self, schema: pa.Schema):
        self.schema = schema
        self.zeros = pa.py_buffer(b"")

    def null(self, typ: pa.DataType, n: int) -> pa.Array:
        if not (pa.types.is_string(typ) or pa.types.is_boolean(typ) or pa.types.is_integer(typ)
                or pa.types.is_floating(typ)):
            return pa.nulls(n, typ)
        if self.zeros.size < 8 * (n + 1):  # the widest buffer: 8-byte values, or n + 1 offsets
            self.zeros = pa.py_buffer(np.zeros(8 * (n + 1), np.uint8))  # calloc: pages only read stay unmade
        zeros = self.zeros
        buffers = [zeros, zeros, zeros] if pa.types.is_string(typ) else [zeros, zeros]  # offsets all 0: ""
        return pa.Array.from_buffers(typ, n, buffers, null_count=n)

    def filled(self, table: pa.Table) -> pa.Table:
        if table.num_columns == len(self.schema):
            return table
        n = table.num_rows
        cols = [table.column(f.name) if f.name in table.column_names else self.null(f.type, n) for f in self.schema]
        return pa.Table.from_arrays(cols, schema=self.schema)


# numpy -> Arrow through the buffers (servetrace/arrays.py: pyarrow's own conversions import pandas).
def _float64_array(x: np.ndarray) -> pa.Array:
    return pa.Array.from_buffers(pa.float64(), x.size, [None, pa.py_buffer(np.ascontiguousarray(x, np.float64))])


def _int64_array(x: np.ndarray) -> pa.Array:
    return pa.Array.from_buffers(pa.int64(), x.size, [None, pa.py_buffer(np.ascontiguousarray(x, np.int64))])


def _holds_nul(table: pa.Table, names: tuple[str, ...]) -> bool:
    """Whether a value of the string columns `names` holds a NUL byte: one scan of each column's
    characters (its data buffer between the first and the last offset), not a test per value."""
    for name in names:
        for arr in table.column(name).chunks:
            data = arr.buffers()[2]
            if len(arr) == arr.null_count or data is None:
                continue
            width = 8 if pa.types.is_large_string(arr.type) else 4
            offsets = np.frombuffer(arr.buffers()[1], np.int64 if width == 8 else np.int32, len(arr) + 1,
                                    arr.offset * width)
            start, stop = int(offsets[0]), int(offsets[-1])
            if stop > start and np.frombuffer(data, np.uint8, stop - start, start).min() == 0:
                return True
    return False


# Unicode's space separators (category Zs), which DuckDB's `trim` removes from both ends of a value
# (tabs and line breaks are not among them).
SPACE_SEPARATORS = " \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000"


def _needs_trim(arr: pa.Array) -> bool:
    """Whether `nullif(trim(v), '')` could change a value of `arr`: an empty value, or one whose first
    or last byte is a space or not ASCII (every other space separator is). A scan of the characters'
    bytes, then two bytes a value where one is a space or not ASCII; never a value's characters."""
    n = len(arr)
    if arr.null_count == n:
        return False
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        return True
    width = 8 if pa.types.is_large_string(arr.type) else 4
    offsets = np.frombuffer(arr.buffers()[1], np.int64 if width == 8 else np.int32, n + 1, arr.offset * width)
    starts, stops = offsets[:-1], offsets[1:]
    if arr.null_count:
        valid = np.unpackbits(np.frombuffer(arr.buffers()[0], np.uint8), count=arr.offset + n,
                              bitorder="little")[arr.offset:].view(bool)
        starts, stops = starts[valid], stops[valid]
    if (stops == starts).any():
        return True
    data = np.frombuffer(arr.buffers()[2], np.uint8)
    lo, hi = int(offsets[0]), int(offsets[-1])
    chars = data[lo:hi]
    if chars.max() < 0x80 and not (chars == 0x20).any():  # the usual case: no space, ASCII only
        return False
    first, last = data[starts], data[stops - 1]
    return bool(np.maximum(first, last).max() >= 0x80 or (first == 0x20).any() or (last == 0x20).any())


def _trimmed(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """`nullif(trim(v), '')` of each value, as DuckDB makes it; chunks that need nothing as they are."""
    chunks = []
    for arr in col.chunks:
        if _needs_trim(arr):
            import pyarrow.compute as pc  # only where a value is padded or empty

            arr = pc.utf8_trim(arr, characters=SPACE_SEPARATORS)
            arr = pc.if_else(pc.equal(pc.binary_length(arr), 0), pa.scalar(None, arr.type), arr)
        chunks.append(arr)
    return pa.chunked_array(chunks, col.type)


def stream_typed(
    con: duckdb.DuckDBPyConnection,
    select_sql: str,
    kept_path: Path,
    kept_schema: pa.Schema,
    refused_path: Path,
    numbered: bool,
    shift_for: Callable[[float], float],
    metadata_for: Callable[[StreamResult], dict[str, str]],
    nul_columns: tuple[str, ...] = (),
    trim_columns: tuple[str, ...] = (),
) -> StreamResult:
    """Run `select_sql` (columns: [rec,] reason, then `kept_schema`'s) and write its kept rows to
    `kept_path`, arrival_s shifted by shift_for(first batch's smallest kept arrival), with the key-value
    metadata metadata_for(result) asks for once the whole stream is counted; refused (rec, reason)
    go to `refused_path`. `numbered`: the select carries rec, else rec is the 1-based position.
    `nul_columns`: string columns whose NUL bytes the select does not refuse; at the first batch
    (kept or refused rows) holding one the stream stops unfinished, `nul` set. `trim_columns`: string
    columns the select hands over untrimmed: each kept value is written as `nullif(trim(v), '')`."""
    out = StreamResult()
    kept = _Writer(kept_path, kept_schema, "snappy")
    refused = _Writer(refused_path, REFUSED, "zstd")
    last = -np.inf
    shift: float | None = None
    nulls = _Nulls(kept_schema)
    try:
        con.execute(f"set streaming_buffer_size = '{STREAM_BUFFER}'")
        reader = con.sql(select_sql).to_arrow_reader(READ_ROWS)
        for batch in _batches(reader):
            n = batch.num_rows
            table = pa.Table.from_batches([batch])
            if nul_columns and _holds_nul(table, nul_columns):
                out.nul = True
                break
            reason = table.column("reason")
            if reason.null_count < n:
                import pyarrow.compute as pc  # only where records are refused

                bad = pc.is_valid(reason)
                recs = table.column("rec") if numbered else _int64_array(np.arange(out.parsed + 1, out.parsed + n + 1))
                refused.write(pa.table({"rec": pc.filter(recs, bad), "reason": pc.filter(reason, bad)}))
                table = table.filter(pc.invert(bad))
            out.parsed += n
            table = table.drop_columns(["rec", "reason"] if numbered else ["reason"])
            if table.num_rows == 0:
                continue
            arrival = numpy_of(table.column("arrival_s"))
            lo = float(arrival.min())
            out.lo = lo if out.lo is None else min(out.lo, lo)
            if out.ordered:
                out.ordered = not (arrival[0] < last or bool((arrival[1:] < arrival[:-1]).any()))
            last = arrival[-1]
            if shift is None:
                shift = float(shift_for(lo))
            if shift:
                arrival = arrival - shift
                table = table.set_column(0, "arrival_s", _float64_array(arrival))
            for name in trim_columns:
                i = table.schema.get_field_index(name)
                table = table.set_column(i, name, _trimmed(table.column(i)))
            out.kept += table.num_rows
            out.ends.add(arrival)
            kept.write(nulls.filled(table))
        out.refused = out.parsed - out.kept
        out.shift = shift or 0.0
        if out.nul:  # the caller reads again, refusing NUL bytes in SQL; what was written is dropped
            reader.close()
            _abandon(kept, refused)
            return out
        refused.close()
        kept.close(metadata_for(out))
    except BaseException:
        _abandon(kept, refused)
        raise
    return out


def _batches(reader: pa.RecordBatchReader):
    """The reader's batches. DuckDB's error past the first batches comes through the Arrow stream
    as an OSError: it is raised as the duckdb.Error it is, which the ingest answers (a serial
    re-read, or a one-line error) as it does when the error comes first."""
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            return
        except OSError as exc:
            raise duckdb.Error(str(exc)) from None
        yield batch


def _abandon(*writers: _Writer) -> None:
    for writer in writers:
        writer.abandon()
