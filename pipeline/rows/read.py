"""Batches of rows in file (= arrival) order: from a Parquet file, a frame or a DuckDB query; and
`run`, which hands each batch to every consumer, each on its own thread, in order."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl
import pyarrow as pa

from servetrace import io
from servetrace.errors import ServetraceError

BATCH_ROWS = 1 << 20

Batch = pa.RecordBatch | pa.Table
# columns -> a fresh iterator over the table's rows in batches, in file order
Batches = Callable[[list[str]], Iterator[Batch]]


class Unsorted(Exception):
    """The table is not sorted by arrival_s (streamed inter-arrivals need arrival order)."""


def sorted_copy(path: Path, columns: list[str], into: Path, memory_limit: str | None) -> Path:
    """The table sorted by arrival (DuckDB, spilling to disk past its memory limit)."""
    from servetrace import db

    out = into / "sorted.parquet"
    con = db.connect(memory_limit=memory_limit, temp_dir=into)
    try:
        cols = ", ".join(f'"{c}"' for c in columns)
        con.execute(f"COPY (SELECT {cols} FROM read_parquet(?) ORDER BY arrival_s) TO '{out}' (FORMAT parquet)",
                    [[str(p) for p in io.parquet_parts(path)]])
    finally:
        con.close()
    return out


def frame_batches(frame: pl.DataFrame, rows: int | None = None) -> Batches:
    def read(cols: list[str]) -> Iterator[Batch]:
        n = rows or BATCH_ROWS
        for lo in range(0, frame.height, n):
            yield frame.slice(lo, n).select(cols).to_arrow()
    return read


def file_batches(path: Path, rows: int | None = None) -> Batches:
    """Batches of a Parquet file, string columns read as dictionary codes, the next batch decoded
    on a second thread while the caller works on the current one."""
    def read(cols: list[str]) -> Iterator[Batch]:
        try:
            schema = io.parquet_schema(path)
            strings = [c for c in cols if pa.types.is_string(schema.field(c).type) or pa.types.is_large_string(schema.field(c).type)]
            # pre_buffer=False: pre-buffered column ranges stay cached for the file's lifetime, which
            # made memory grow by ~4 MB a batch (read back over 100 M rows: 0.64 GB against 0.23 GB)
            yield from ahead(io.parquet_batches(path, cols, rows or BATCH_ROWS, pre_buffer=False, read_dictionary=strings))
        except (OSError, ValueError) as exc:  # pyarrow's read errors (ArrowInvalid is a ValueError)
            raise ServetraceError(f"{path}: not a readable Parquet table ({str(exc).splitlines()[0]})") from None
    return read


def query_batches(con, query: str, rows: int | None = None) -> Iterator[Batch]:
    """The rows of a DuckDB query over stg_requests in file order (`row_id` checked against it)."""
    con.execute("set preserve_insertion_order = true")
    try:
        at = 0
        for batch in con.sql(query).to_arrow_reader(rows or BATCH_ROWS):
            n = batch.num_rows
            ids = batch.column("row_id")
            if n and (ids[0].as_py() != at or ids[n - 1].as_py() != at + n - 1):
                raise RuntimeError("stg_requests did not come back in file order")
            at += n
            yield batch
    finally:
        con.execute("set preserve_insertion_order = false")


def ahead(items: Iterator) -> Iterator:
    """The items of `items`, the next one produced on a worker thread while this one is used."""
    with ThreadPoolExecutor(1) as pool:
        nxt = pool.submit(next, items, None)
        while (item := nxt.result()) is not None:
            nxt = pool.submit(next, items, None)
            yield item


def run(items: Iterator, *consumers) -> None:
    """Each item to every consumer's `add`, each consumer on its own thread, seeing the items one
    at a time and in order (the next item is prepared while the consumers work)."""
    pending: list = []
    with ThreadPoolExecutor(len(consumers)) as pool:
        for item in items:
            for f in pending:
                f.result()
            pending = [pool.submit(consumer.add, item) for consumer in consumers]
        for f in pending:
            f.result()


def column(b: Batch, name: str) -> pa.Array:
    col = b.column(name)
    if isinstance(col, pa.ChunkedArray):
        if pa.types.is_dictionary(col.type):  # chunks may hold different dictionaries
            col = col.cast(col.type.value_type)
        col = col.combine_chunks()
    return col


def first_arrival(batches: Batches) -> float | None:
    """The first row's arrival (the earliest, in a table sorted by arrival); None without rows."""
    for b in batches(["arrival_s"]):
        if b.num_rows:
            v = pl.Series(column(b, "arrival_s"))[0]
            if v is None:
                raise ServetraceError("requests: arrival_s has nulls (every request needs an arrival time)")
            return float(v)
    return None


def all_null(path: str | Path) -> set[str]:
    """Columns whose Parquet statistics say every value is null (a column the source lacks; no
    statistics: maybe not), from the footers alone."""
    nulls: dict[str, int] = {}
    rows = io.parquet_rows(path)
    for meta in io.parquet_footers(path):
        for g in range(meta.num_row_groups):
            for i in range(meta.num_columns):
                col = meta.row_group(g).column(i)
                stats = col.statistics
                count = stats.null_count if stats is not None and stats.has_null_count else -(rows + 1)
                nulls[col.path_in_schema] = nulls.get(col.path_in_schema, 0) + count
    return {c for c, n in nulls.items() if n == rows and rows > 0}


def present(batches: Batches, col: str) -> bool:
    return any(b.column(col).null_count < b.num_rows for b in batches([col]))


def varies(batches: Batches, col: str) -> bool:
    """More than one distinct value (null counts as one), stopping at the second."""
    seen = None
    for b in batches([col]):
        values = pl.Series(column(b, col)).cast(pl.String).unique()
        seen = values if seen is None else pl.concat([seen, values]).unique()
        if seen.len() > 1:
            return True
    return False
