"""The one way servetrace opens DuckDB (ingest, the stages, the bundle fit's sort): UTC, no progress
bar, a memory limit, threads and a scratch directory to spill to; and what running out of memory says."""

from __future__ import annotations

from pathlib import Path

import duckdb

from servetrace.errors import ServetraceError

# DuckDB's buffer pool for the stages when --memory-limit is not given: they aggregate to small
# tables, so a bounded pool makes larger work spill instead of growing with the trace (DuckDB's
# own default is 80 % of RAM).
DEFAULT_MEMORY_LIMIT = "2GB"


def connect(database: str | Path = ":memory:", *, memory_limit: str | None = None, threads: int | None = None,
            temp_dir: str | Path | None = None, keep_order: bool = True) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with servetrace's settings; a memory limit DuckDB cannot read is one line."""
    con = duckdb.connect(str(database))
    try:
        con.execute("set TimeZone = 'UTC'")
        con.execute(f"set preserve_insertion_order = {'true' if keep_order else 'false'}")
        con.execute("set enable_progress_bar = false")
        if memory_limit:
            try:
                con.execute("set memory_limit = ?", [memory_limit])
            except duckdb.Error:
                raise ServetraceError(f"--memory-limit {memory_limit!r}: not a size DuckDB understands (e.g. 4GB)") from None
        if temp_dir is not None:
            con.execute("set temp_directory = ?", [str(temp_dir)])
        if threads:
            con.execute(f"set threads = {int(threads)}")
    except BaseException:
        con.close()
        raise
    return con


def out_of_memory(where: str | Path, memory_limit: str | None, exc: Exception) -> ServetraceError:
    """The one-line error for DuckDB running out of memory."""
    limit = f"under --memory-limit {memory_limit}" if memory_limit else "(no --memory-limit set)"
    return ServetraceError(f"{where}: DuckDB ran out of memory {limit}: {str(exc).strip().splitlines()[0]}; "
                           "raise the limit")
