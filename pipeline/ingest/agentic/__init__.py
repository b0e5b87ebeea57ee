"""Agentic and 2025-26 trace formats: each reader flattens its source into one row per model call.

A reader is SQL over the source (DuckDB's JSON and Parquet readers), in `copilot.py`,
`tracelab.py`, `cctraces.py`, `baseten.py`. The flattening writes an intermediate Parquet file
whose columns are named after the canonical ones and hold the source's values as text (so the
ordinary checks in ingest/canonical.py parse and refuse them with the usual reasons), plus:

    _line     the source line (a file's number, for a directory of traces) the call came from
    _record   that source record's text (the first 64 Ki characters), for rejects.parquet
    _problem  why the record gave no call at all (not JSON, a list that is not a list ...)
    _item     where in its record the call sits (`turns[0].llm_calls[2]`), for a source record that
              holds several calls: (_line, _item) names each reject apart

The reader runs on one chunk of the source at a time (a range of lines, a group of trace files),
and the chunks' rows are written in order: memory is a chunk's, whatever the source size.
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path

import duckdb

from servetrace.errors import ServetraceError
from servetrace.ingest.agentic import baseten, cctraces, copilot, records, split, tracelab
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


@contextlib.contextmanager
def held_under_limit(con, path: Path, name: str, setting: str | None):
    """While an agentic source is ingested (the reader, then the checks, the stream and the sort),
    DuckDB gets the memory limit less what the process holds and the rows it has in flight outside
    DuckDB: `budget(margin)` sets that and returns it. The limit (`setting`, the --memory-limit
    the connection was opened with; None: DuckDB's default) is restored on the way out."""
    limit = _memory_limit(con)
    granted = []  # (the process's memory before, DuckDB's budget) of each earlier call

    def budget(margin: float, least: float = MIN_BUDGET) -> float:
        rss = _release_unused()
        if granted:
            # What the process gained since the last grant, up to that grant, is DuckDB's allocator
            # keeping freed memory, which its next allocations reuse: not the process's own.
            before, grant = granted[-1]
            rss -= min(max(rss - before, 0), grant)
        left = limit - rss - margin
        if left < least:
            need = math.ceil((rss + margin + least) / 1e6) + HEADROOM_MB  # DuckDB's MB: 10^6 bytes
            raise ServetraceError(f"{path}: the memory limit ({limit / 2**20:.0f} MiB) leaves {max(left, 0) / 2**20:.0f} MiB "
                                  f"to {name} ingest after this process's own {rss / 2**20:.0f} MiB and "
                                  f"{margin / 2**20:.0f} MiB of rows in flight; raise --memory-limit to at least {need}MB")
        con.execute(f"set memory_limit = '{int(left)}B'")
        granted.append((rss, left))
        return left

    budget.limit = limit
    try:
        yield budget
    finally:
        if setting:
            con.execute("set memory_limit = ?", [setting])
        else:
            con.execute("reset memory_limit")


def flatten(con, name: str, path: Path, compression: str, out: Path, budget) -> list[str]:
    """Write the intermediate of `path` in format `name` to `out`; return the canonical columns it fills.
    The reader runs on one chunk of the source at a time, chunks in source order, under `budget`
    (`held_under_limit`): peak memory is bounded by the limit whatever the source size."""
    reader = READERS[name]
    left = budget(ARROW_BYTES)
    chunk = int(max(ROW_GROUP_BYTES, min(MAX_CHUNK_BYTES, left / CHUNK_SHARE)))
    if reader.CONTAINER == "jsonl":
        lines = out.with_name("lines.parquet")
        _copy(con, path, name, records.numbered_lines(lit(str(path)), lit(compression)), lines,
              f"row_group_size_bytes {ROW_GROUP_BYTES}")
        chunks = [records.jsonl_records(records.line_range(lit(str(lines)), a, b))
                  for a, b in _line_chunks(lines, chunk)]
    else:
        chunks = [path]
    parts = out.with_name("parts.parquet") if hasattr(reader, "finish_sql") else out
    pieces: list[Path] = []
    try:
        selects = (_dir_selects(con, path, min(chunk, left / PIECE_SHARE), left, budget.limit, out, pieces)
                   if reader.CONTAINER == "dir" else [reader.select_sql(c) for c in chunks])
        _write_chunks(con, path, name, selects, parts)
    finally:
        for piece in pieces:
            piece.unlink(missing_ok=True)
    if parts != out:  # a column that needs the whole source (TraceLab's turn, over a session's rounds)
        _copy(con, path, name, reader.finish_sql(lit(str(parts))), out)
    return list(reader.COLUMNS)


def stream_margin(flat: Path, batch_rows: int) -> float:
    """The rows the ingest stream holds outside DuckDB: a batch of `batch_rows` calls, sized from the
    intermediate's columns but its record text (values as text: more than the typed batch holds)."""
    import pyarrow.parquet as pq

    if not flat.exists():  # no call at all: nothing to stream (the checks say why)
        return 0.0
    meta = pq.ParquetFile(flat).metadata
    rows = max(meta.num_rows, 1)
    names = [meta.schema.column(i).path for i in range(meta.num_columns)]
    size = sum(meta.row_group(g).column(i).total_uncompressed_size for g in range(meta.num_row_groups)
               for i, n in enumerate(names) if not n.startswith("_record"))
    return size * min(1.0, batch_rows / rows)


MAX_CHUNK_BYTES = 32 << 20  # source text per chunk (a single longer trace file is one chunk)
# DuckDB's memory for a chunk, measured on Copilot sessions, is up to ~20x its text (nested
# structs, unnested with the record text beside them): a chunk gets 1/40 of DuckDB's memory.
CHUNK_SHARE = 40
# A single trace file is read whole. Measured on cc-traces (hash_ids lists of up to ~330 ids): DuckDB
# needed 32-53x the text of a 4.3 MB trace (135 MiB ran out, 229 MiB did) and 21-46x of a 37 MB one.
FILE_FACTOR = 56
# A longer file is split into pieces of its requests (split.py) of 1/PIECE_SHARE of DuckDB's
# memory: a piece's read then takes about half of it, and what DuckDB's allocator keeps of it
# afterwards still leaves the stream its share (at 1/56, 40k calls under 300MB ran the stream out).
PIECE_SHARE = 2 * FILE_FACTOR
ROW_GROUP_BYTES = 1 << 20  # of numbered lines: the unit a range of lines is read in
ARROW_BYTES = 32 << 20  # the flattened rows in flight to Parquet, outside DuckDB
MIN_BUDGET = 64 << 20  # DuckDB's least for the reader
MIN_STREAM_BUDGET = 32 << 20  # ... and for the checks, the stream and the sort after it
HEADROOM_MB = 16  # the least limit suggested: the process's memory moves a little run to run


def _memory_limit(con) -> float:
    """DuckDB's memory limit in bytes (as it reports it: '381.4 MiB')."""
    number, unit = con.execute("select current_setting('memory_limit')").fetchall()[0][0].split()
    return float(number) * 1024 ** {"bytes": 0, "KiB": 1, "MiB": 2, "GiB": 3, "TiB": 4}[unit]


def _rss() -> int:
    """The memory this process holds now, in bytes (Linux /proc; elsewhere its peak so far)."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _release_unused() -> int:
    """The process's memory after Arrow's pool gives back what it keeps of freed batches (`_rss`)."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    return _rss()


def _line_chunks(lines: Path, most: int) -> list[tuple[int, int]]:
    """Ranges of line numbers, whole row groups of `lines` each, of at most `most` bytes (or one group)."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(lines).metadata
    chunks: list[tuple[int, int]] = []
    first, size, line = 1, 0, 0
    for i in range(meta.num_row_groups):  # a loop over row groups, thousands of lines each
        group = meta.row_group(i)
        if size and size + group.total_byte_size > most:
            chunks.append((first, line))
            first, size = line + 1, 0
        size += group.total_byte_size
        line += group.num_rows
    return chunks + [(first, line)] if line >= first else chunks


def _dir_selects(con, path: Path, most: float, left: float, limit: float, out: Path, pieces: list[Path]) -> list[str]:
    """The cc-traces reader's selects: groups of trace files of at most `most` bytes, each read
    whole; a longer file split into pieces of its `requests` of about `most` bytes (split.py),
    written beside `out` (listed in `pieces`), each told its first position and the user turns
    ended before it (counted piece by piece, in order). A file that does not split is read whole
    if it fits (`_one_file_fits`)."""
    reader = READERS[cctraces.NAME]
    selects = []
    for files, first in _file_chunks(path, int(most)):  # a loop over groups of files
        lay = split.layout(Path(files[0])) if os.path.getsize(files[0]) > most else None
        if lay is None:
            if len(files) == 1:
                _one_file_fits(Path(files[0]), left, limit)
            selects.append(reader.select_sql(records.json_file_records(files, first)))
            continue
        ended = 0
        for a, b in split.pieces(lay, int(most)):  # a loop over pieces of a long file
            pieces.append(out.with_name(f"piece-{first}-{len(pieces)}.json"))
            split.write_piece(Path(files[0]), lay, a, b, pieces[-1])
            piece = records.json_file_records([str(pieces[-1])], first)
            selects.append(reader.select_sql(piece, base=a, turns=ended))
            with _reading(path, reader.NAME):
                ended += con.execute(reader.turns_ended_sql(piece)).fetchall()[0][0]
    return selects


def _one_file_fits(big: Path, left: float, limit: float) -> None:
    """A trace file that does not split is read whole: refused up front, with the least limit that
    reads it, where its text times the reader's need would not fit in DuckDB's share."""
    need = os.path.getsize(big) * FILE_FACTOR
    if need > left:
        raise ServetraceError(f"{big}: one trace of {os.path.getsize(big) / 1e6:.0f} MB is read whole and needs about "
                              f"{FILE_FACTOR}x its text; raise --memory-limit to at least "
                              f"{math.ceil((limit - left + need) / 1e6) + HEADROOM_MB}MB")


def _file_chunks(path: Path, most: int) -> list[tuple[list[str], int]]:
    """Groups of trace files in name order, of at most `most` bytes each (or one file), with the
    number of each group's first file."""
    files = [str(f) for f in cctraces.trace_files(path)]
    chunks: list[tuple[list[str], int]] = []
    size = 0
    for n, file in enumerate(files, 1):  # a loop over files
        grow = os.path.getsize(file)
        if not chunks or size + grow > most:
            chunks.append(([], n))
            size = 0
        chunks[-1][0].append(file)
        size += grow
    return chunks


def _write_chunks(con, path: Path, name: str, selects: list[str], out: Path) -> None:
    """Each select's rows, in order, into one Parquet file (small batches: rows carry source text)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    try:
        for select in selects:
            with _reading(path, name):
                for batch in con.sql(select).to_arrow_reader(BATCH_ROWS):
                    if writer is None:
                        writer = pq.ParquetWriter(out, batch.schema, compression="zstd")
                    writer.write_table(pa.Table.from_batches([batch]).cast(writer.schema))
    finally:
        if writer is not None:
            writer.close()


BATCH_ROWS = 2048


def _copy(con, path: Path, name: str, select: str, out: Path, options: str = "") -> None:
    with _reading(path, name):
        con.execute(f"copy ({select}) to {lit(str(out))} "
                    f"(format parquet, compression zstd{', ' + options if options else ''})").fetchall()


@contextlib.contextmanager
def _reading(path: Path, name: str):
    """A DuckDB error reading the source is one clear line (running out of memory says so itself)."""
    try:
        yield
    except duckdb.OutOfMemoryException:
        raise
    except duckdb.Error as exc:
        text = str(exc).strip().splitlines()
        raise ServetraceError(f"{path}: cannot read as {name}: {text[0] if text else type(exc).__name__}") from None


def source_sha256(path: Path) -> str:
    """A directory's digest: its .json files' names and contents, in name order."""
    import hashlib

    from servetrace import io

    h = hashlib.sha256()
    for file in cctraces.trace_files(path):
        h.update(file.name.encode() + b"\0" + io.sha256_file(file).encode() + b"\n")
    return h.hexdigest()


def spec(name: str) -> FormatSpec:
    """How the checks read the intermediate: every column under its canonical name."""
    reader = READERS[name]
    cols = {c: c for c in reader.COLUMNS}
    return FormatSpec(name, cols, reader.TIME_UNIT, reader.ORIGIN, failed=reader.FAILED,
                      hash_ids="hash_ids" if reader.HASH_IDS else None, flattened=True)
