"""Generation blocks merged by arrival time with bounded memory: the session layer's blocks each
hold the sessions that start in them, whose later turns land in later blocks. One block is sorted in memory; more are spilled to Parquet in a scratch directory
and read back in arrival order by DuckDB's sort, which spills to disk past its memory limit, a
batch of `rows` at a time. Ties keep generation order (a sequence column), so the bytes are the
same for a seed however many blocks the plan has."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from servetrace.db import connect
from servetrace.io import scratch_dir, temporary_dir

SEQ = "__seq"
MEMORY_LIMIT = "1GB"  # DuckDB's sort; larger merges spill to the scratch directory


def _sorted(table: pa.Table) -> pa.Table:
    t = table["arrival_s"].to_numpy()
    return table.take(pa.array(np.argsort(t, kind="stable")))


def merged(tables: Iterator[pa.Table], rows: int, beside: Path | None = None) -> Iterator[pa.Table]:
    """`tables` (each sorted by arrival) as tables of at most `rows` rows in arrival order.
    `beside`: the output, whose directory holds the scratch files (default: the system's temp)."""
    first = next(tables, None)
    second = next(tables, None)
    if second is None:
        if first is not None:
            yield first
        return
    with ExitStack() as stack:
        tmp = stack.enter_context(scratch_dir(beside) if beside is not None else temporary_dir(None, "servetrace-merge-"))
        n, schema = 0, first.schema
        for i, table in enumerate(_chain(first, second, tables)):
            table = table.append_column(SEQ, pa.array(np.arange(n, n + table.num_rows, dtype=np.int64)))
            n += table.num_rows
            pq.write_table(table, tmp / f"part-{i:06d}.parquet")
        con = stack.enter_context(connect(memory_limit=MEMORY_LIMIT, temp_dir=tmp / "spill"))
        parts = str(tmp / "part-*.parquet").replace("'", "''")
        query = f"select * exclude ({SEQ}) from read_parquet('{parts}') order by arrival_s, {SEQ}"
        for batch in con.sql(query).to_arrow_reader(rows):
            yield pa.Table.from_batches([batch]).cast(schema)


def _chain(*parts) -> Iterator[pa.Table]:
    for p in parts[:-1]:
        yield p
    yield from parts[-1]
