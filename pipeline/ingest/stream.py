"""One read of `typed`, in file order: kept rows to Parquet, refused record numbers beside them.

DuckDB parses and checks the records on every core and hands them over in Arrow batches; each
batch is split, counted and written whole (no loop over rows). Writing while DuckDB reads the
next batches costs less than materialising the parsed table and copying it out again.
On the way the stream collects what the summary needs: rows parsed / kept / refused, the first
and smallest kept arrival, whether arrivals ever go backwards, and the first kept arrivals (for
the timestamp grid).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from servetrace.arrays import numpy_of

BATCH_ROWS = 1 << 20  # one Parquet row group per batch
REFUSED = pa.schema([("rec", pa.int64()), ("reason", pa.string())])


@dataclass
class StreamResult:
    parsed: int = 0
    kept: int = 0
    refused: int = 0
    lo: float | None = None  # smallest kept arrival, on the source clock
    shift: float = 0.0  # subtracted from every arrival written
    ordered: bool = True  # kept arrivals never go backwards in file order


class _Writer:
    """A Parquet file opened on its first batch. Only the string columns are dictionary-encoded: a
    dictionary of a million distinct floats is built and then thrown away (a quarter of the write)."""

    def __init__(self, path: Path, schema: pa.Schema, compression: str):
        self.path, self.schema, self.compression = path, schema, compression
        self.writer: pq.ParquetWriter | None = None

    def write(self, table: pa.Table) -> None:
        if self.writer is None:
            strings = [f.name for f in self.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
            self.writer = pq.ParquetWriter(self.path, self.schema, compression=self.compression, use_dictionary=strings,
                                             store_schema=False)  # metadata lives in the footer alone
        if not table.schema.equals(self.schema):  # a cast, even to the same schema, loads pyarrow.compute
            table = table.cast(self.schema)
        self.writer.write_table(table, row_group_size=BATCH_ROWS)

    def close(self, metadata: dict[str, str] | None = None) -> None:
        if self.writer is not None:
            if metadata:
                self.writer.add_key_value_metadata(metadata)
            self.writer.close()


class _Nulls:
    """The columns of `schema` a batch lacks (the source has none of them), as null arrays made once
    and sliced: DuckDB would make and hand over a buffer of nulls per column and batch."""

    def __init__(self, schema: pa.Schema):
        self.schema, self.made = schema, {}

    def filled(self, table: pa.Table) -> pa.Table:
        if table.num_columns == len(self.schema):
            return table
        n = table.num_rows
        cols = []
        for f in self.schema:
            if f.name in table.column_names:
                cols.append(table.column(f.name))
                continue
            if len(self.made.get(f.name, ())) < n:  # the first batch's size: a small trace makes small ones
                self.made[f.name] = pa.nulls(n, f.type)
            cols.append(self.made[f.name].slice(0, n))
        return pa.Table.from_arrays(cols, schema=self.schema)


# numpy -> Arrow through the buffers (servetrace/arrays.py: pyarrow's own conversions import pandas).
def _float64_array(x: np.ndarray) -> pa.Array:
    return pa.Array.from_buffers(pa.float64(), x.size, [None, pa.py_buffer(np.ascontiguousarray(x, np.float64))])


def _int64_array(x: np.ndarray) -> pa.Array:
    return pa.Array.from_buffers(pa.int64(), x.size, [None, pa.py_buffer(np.ascontiguousarray(x, np.int64))])


def stream_typed(
    con: duckdb.DuckDBPyConnection,
    select_sql: str,
    kept_path: Path,
    kept_schema: pa.Schema,
    refused_path: Path,
    numbered: bool,
    shift_for: Callable[[float], float],
    metadata_for: Callable[[StreamResult], dict[str, str]],
) -> StreamResult:
    """Run `select_sql` (columns: [rec,] reason, then `kept_schema`'s) and write its kept rows to
    `kept_path`, arrival_s shifted by shift_for(first batch's smallest kept arrival), with the key-value
    metadata metadata_for(result) asks for once the whole stream is counted; refused (rec, reason)
    go to `refused_path`. `numbered`: the select carries rec, else rec is the 1-based position."""
    out = StreamResult()
    kept = _Writer(kept_path, kept_schema, "snappy")
    refused = _Writer(refused_path, REFUSED, "zstd")
    last = -np.inf
    shift: float | None = None
    nulls = _Nulls(kept_schema)
    try:
        reader = con.sql(select_sql).to_arrow_reader(BATCH_ROWS)
        for batch in reader:
            n = batch.num_rows
            table = pa.Table.from_batches([batch])
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
            out.kept += table.num_rows
            kept.write(nulls.filled(table))
        out.refused = out.parsed - out.kept
        out.shift = shift or 0.0
        refused.close()
        kept.close(metadata_for(out))
    except BaseException:
        for writer in (kept, refused):
            if writer.writer is not None:
                writer.writer.close()
        raise
    return out
