"""Run the SQL stages: each file in sql/ is one table, a chain of CTEs ending in `select * from final`.

The runner wraps a file in `create or replace table <stem> as ...` (staging projections that
are cheap to recompute become views). Parameters reach the SQL as DuckDB variables
(`getvariable('window_s')`), so the files stay plain, portable SELECTs; the macros they share
(sql/macros.sql) are created with the database.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa

from servetrace import db, io
from servetrace.resources import SQL_DIR, statement

# Pure per-row projections: a view costs nothing and is recomputed by each consumer.
VIEWS = frozenset({"stg_requests", "fit_length_rows"})
IN_MEMORY_ROWS = 1_000_000
# Where a table's SQL file lives: staging and marts, and the set-based form of the gap statistics
# (sql/gaps/, the Spark engine's distributed replacement for the numpy gap stream) and of the
# bundle fit (sql/fit/, the same for the streamed fit), of the block reuse analysis (sql/reuse/) and
# of the session model's rows (sql/sessions/).
LAYERS = ("staging", "marts", "gaps", "fit", "reuse", "sessions")
UINT64 = 18446744073709551616.0


def sql_text(name: str) -> str:
    for layer in LAYERS:
        path = SQL_DIR / layer / f"{name}.sql"
        if path.exists():
            return path.read_text(encoding="utf-8")
    raise FileNotFoundError(f"no SQL file for table {name!r} under {SQL_DIR}")


def run_sql(con: duckdb.DuckDBPyConnection, name: str) -> None:
    kind = "view" if name in VIEWS else "table"
    if getattr(con, "engine", "duckdb") == "spark":  # servetrace.spark.connection: transpiled there
        return con.run_sql(name, kind)
    con.execute(f"create or replace {kind} {name} as\n{sql_text(name)}")


def run_once(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Build `name` unless this connection has built it already: for a table that reads `requests`
    only (no variable), so an earlier copy is the same table (on Spark, not a second checkpoint)."""
    if getattr(con, "engine", "duckdb") == "spark":
        return con.run_once(name, "table")
    if not con.execute("select count(*) from duckdb_tables() where table_name = ?", [name]).fetchall()[0][0]:
        run_sql(con, name)


def sample_rows(con: duckdb.DuckDBPyConnection, rows: int, sample_p: float) -> None:
    """stg_sample_rows, the rows the stages sample, built once a connection: on DuckDB drawn in numpy
    from the same uniforms as its SQL, which hashes every row in bigint steps (`rows`: the table's;
    the `seed` variable set)."""
    if getattr(con, "engine", "duckdb") == "spark":
        return con.run_once("stg_sample_rows", "table")
    if con.execute("select count(*) from duckdb_tables() where table_name = 'stg_sample_rows'").fetchall()[0][0]:
        return
    from servetrace.arrays import arrow_of
    from servetrace.rows.uniforms import sampled_rows

    drawn = sampled_rows(rows, int(sql_variables_value(con, "seed")), sample_p)
    ids = pa.Table.from_arrays([arrow_of(drawn)], names=["row_id"])  # pa.table of numpy imports pandas
    con.register("stg_sample_rows_drawn", ids)
    try:
        con.execute("create table stg_sample_rows as select row_id from stg_sample_rows_drawn")
    finally:
        con.unregister("stg_sample_rows_drawn")


def table(con: duckdb.DuckDBPyConnection, name: str, order_by: str | None = None, once: bool = False) -> pl.DataFrame:
    """Build `name` from its SQL file and return it (small, aggregated) as a Polars frame. `once`:
    nothing else reads it, so Spark answers it as a view (no copy of its rows kept, nor the plan it
    keeps); so it does for a table no other SQL file names."""
    if getattr(con, "engine", "duckdb") == "spark" and (once or name not in _named_by_sql()):
        con.run_sql(name, "view")
    else:
        run_sql(con, name)
    query = f"select * from {name}" + (f" order by {order_by}" if order_by else "")
    return con.sql(query).pl()


@lru_cache(maxsize=None)
def _named_by_sql() -> frozenset[str]:
    """The tables some SQL file under sql/ names, other than their own."""
    stems = {p.stem for layer in LAYERS for p in (SQL_DIR / layer).glob("*.sql")}
    named = set()
    for path in SQL_DIR.rglob("*.sql"):
        text = re.sub(r"--[^\n]*", "", path.read_text(encoding="utf-8"))  # not the comments
        named |= (set(re.findall(r"\w+", text)) & stems) - {path.stem}
    return frozenset(named)


def materialize(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Build `name` as a table that later queries read from its rows: on Spark a local checkpoint,
    computed now, so their plans start there instead of repeating the lineage of every stage
    before it (DuckDB's tables already are)."""
    if getattr(con, "engine", "duckdb") == "spark":
        return con.run_sql(name, "checkpoint")
    run_sql(con, name)


@contextmanager
def scope(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Tables built inside are released when it ends. On Spark each one keeps its rows and the
    plan of its whole lineage on the driver until released: a fit's ~40 tables filled a 4 GB heap
    before the session model's queries could run. DuckDB's tables spill to its scratch directory."""
    if getattr(con, "engine", "duckdb") != "spark":
        yield
        return
    mark = con.mark()
    try:
        yield
    finally:
        con.release(mark)


def set_variables(con: duckdb.DuckDBPyConnection, variables: dict) -> None:
    if getattr(con, "engine", "duckdb") == "spark":
        return con.set_variables(variables)
    for key, value in variables.items():
        con.execute(f"set variable {key} = ?", [value])


@contextmanager
def connect(requests_path: str | Path, memory_limit: str | None = None, threads: int | None = None,
            scratch_dir: str | Path | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB database in a scratch directory (so large stages spill to disk), with `requests` as a view.
    A table of at most IN_MEMORY_ROWS rows gets an in-memory database (spilling to the same scratch
    directory): its stage tables are small, and a database file compresses every table it checkpoints."""
    with io.temporary_dir(scratch_dir, ".servetrace-duckdb-") as tmp:
        small = io.parquet_rows(requests_path) <= IN_MEMORY_ROWS
        con = db.connect(":memory:" if small else Path(tmp) / "stages.duckdb",
                         memory_limit=memory_limit or db.DEFAULT_MEMORY_LIMIT,
                         threads=threads, temp_dir=tmp, keep_order=False)
        try:
            con.execute(_requests_view(requests_path))
            con.execute((SQL_DIR / "macros.sql").read_text(encoding="utf-8"))
            yield con
        except duckdb.OutOfMemoryException as exc:  # a clear message, not a traceback
            raise db.out_of_memory(requests_path, memory_limit, exc) from None
        finally:
            con.close()


def _requests_view(requests_path: str | Path) -> str:
    """`requests` over the table: one Parquet file, or a directory of parts numbered across them."""
    parts = io.parquet_parts(requests_path)
    quoted = ["'" + str(p).replace("'", "''") + "'" for p in parts]
    if len(parts) == 1:
        return f"create view requests as select * from read_parquet({quoted[0]}, file_row_number = true)"
    offsets = np.cumsum([0] + [meta.num_rows for meta in io.parquet_footers(requests_path)][:-1])
    return statement("requests_parts", files=f"[{', '.join(quoted)}]", offsets=f"{offsets.tolist()}")


def sql_variables_value(con: duckdb.DuckDBPyConnection, name: str):
    return con.sql(f"select getvariable('{name}') as value").fetchall()[0][0]
