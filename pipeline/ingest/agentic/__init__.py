"""Agentic and 2025-26 trace formats: each reader flattens its source into one row per model call.

A reader is SQL over the source (DuckDB's JSON and Parquet readers), in `copilot.py`,
`tracelab.py`, `cctraces.py`, `baseten.py`. The flattening writes an intermediate Parquet file
whose columns are named after the canonical ones and hold the source's values as text (so the
ordinary checks in ingest/canonical.py parse and refuse them with the usual reasons), plus:

    _line     the source line (a file's number, for a directory of traces) the call came from
    _record   that source record's text (the first 64 Ki characters), for rejects.parquet
    _problem  why the record gave no call at all (not JSON, a list that is not a list ...)

The intermediate is streamed by DuckDB (COPY ... TO parquet): memory stays bounded.
"""

from __future__ import annotations

from pathlib import Path

from servetrace.errors import ServetraceError
from servetrace.ingest.agentic import baseten, cctraces, copilot, records, tracelab
from servetrace.ingest.canonical import lit
from servetrace.ingest.formats import FormatSpec

READERS = {r.NAME: r for r in (copilot, tracelab, cctraces, baseten)}
NAMES = tuple(READERS)


def detect(path: Path, container: str | None, header: list[str]) -> str | None:
    """The agentic format a source is, from its first record's keys (a directory: its first trace)."""
    if path.is_dir():
        return cctraces.NAME if cctraces.looks_like(path) else None
    for reader in READERS.values():
        if reader.CONTAINER == container and set(reader.KEYS) <= set(header):
            return reader.NAME
    return None


def flatten(con, name: str, path: Path, compression: str, out: Path) -> list[str]:
    """Write the intermediate of `path` in format `name` to `out`; return the canonical columns it fills."""
    reader = READERS[name]
    source = path
    if reader.CONTAINER == "jsonl":
        source = out.with_name("lines.parquet")
        _copy(con, path, name, records.numbered_lines(lit(str(path)), lit(compression)), source, rows=1024)
    _copy(con, path, name, reader.select_sql(source, lit(compression)), out)
    return list(reader.COLUMNS)


def _copy(con, path: Path, name: str, select: str, out: Path, rows: int = 8192) -> None:
    try:
        # small row groups: rows carry source text, and a row group is held in memory until written
        con.execute(f"copy ({select}) to {lit(str(out))} (format parquet, compression zstd, row_group_size {rows})")
    except Exception as exc:  # noqa: BLE001 - duckdb.Error of several kinds: one clear line
        text = str(exc).strip().splitlines()
        raise ServetraceError(f"{path}: cannot read as {name}: {text[0] if text else type(exc).__name__}") from None


def source_sha256(path: Path) -> str:
    """A directory's digest: its .json files' names and contents, in name order."""
    import hashlib

    from servetrace import io

    h = hashlib.sha256()
    for file in sorted(path.glob("*.json")):
        h.update(file.name.encode() + b"\0" + io.sha256_file(file).encode() + b"\n")
    return h.hexdigest()


def spec(name: str) -> FormatSpec:
    """How the checks read the intermediate: every column under its canonical name."""
    reader = READERS[name]
    cols = {c: c for c in reader.COLUMNS}
    return FormatSpec(name, cols, reader.TIME_UNIT, reader.ORIGIN, failed=reader.FAILED,
                      hash_ids="hash_ids" if reader.HASH_IDS else None, flattened=True)
