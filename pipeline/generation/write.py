"""Write a generated table: canonical Parquet or CSV, or a tool's format via servetrace.exports."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from servetrace.errors import ServetraceError
from servetrace.io import atomic_path, scratch_dir
from servetrace.outputs import REQUESTS
from servetrace.schema import CANONICAL

FORMATS = ("parquet", "csv", "burstgpt", "mooncake", "vidur")
_BY_SUFFIX = {".parquet": "parquet", ".csv": "csv", ".jsonl": "mooncake"}


def output_format(path: Path, fmt: str | None) -> str:
    if fmt:
        if fmt not in FORMATS:
            raise ServetraceError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
        return fmt
    found = _BY_SUFFIX.get(path.suffix.lower())
    if found is None:
        raise ServetraceError(f"{path}: cannot tell the format from the extension; pass --format")
    return found


def read_rate_fn(path: str | Path) -> tuple[tuple[float, float], ...]:
    """A target aggregate rate per window: CSV `window_start_s,rate_rps` (header required)."""
    try:
        df = pl.read_csv(path)
    except FileNotFoundError:
        raise ServetraceError(f"{path}: no such file") from None
    except Exception as exc:
        raise ServetraceError(f"{path}: not a readable CSV ({type(exc).__name__})") from None
    if not {"window_start_s", "rate_rps"} <= set(df.columns):
        raise ServetraceError(f"{path}: needs columns window_start_s,rate_rps")
    try:
        df = df.select(pl.col("window_start_s", "rate_rps").cast(pl.Float64, strict=True))
    except Exception:
        raise ServetraceError(f"{path}: window_start_s and rate_rps must be numbers") from None
    if df.null_count().sum_horizontal().item():
        raise ServetraceError(f"{path}: empty cells")
    return tuple(zip(df["window_start_s"].to_list(), df["rate_rps"].to_list()))


ROW_GROUP = 1 << 19  # rows per Parquet row group, whatever the blocks they arrive in


def row_groups(tables: Iterable[pa.Table], size: int = ROW_GROUP) -> Iterator[pa.Table]:
    """The rows of `tables`, in order, re-cut into tables of exactly `size` rows (the last
    shorter): the file's layout does not depend on how generation batched its blocks. Their
    chunks stay as they came (no copy into one): Parquet's and CSV's writers give the same bytes
    whatever the chunks (tests/test_generate_stream.py)."""
    pending: list[pa.Table] = []
    held = 0
    for t in tables:
        pending.append(t)
        held += t.num_rows
        while held >= size:
            joined = pa.concat_tables(pending)
            yield joined.slice(0, size)
            rest = joined.slice(size)
            pending, held = [rest], rest.num_rows
    if held:
        yield pa.concat_tables(pending)


def _write_burstgpt(tables: Iterable[pa.Table], path: Path) -> Path:
    """BurstGPT v1 CSV, one row group at a time, Timestamp counted from the first arrival."""
    from servetrace.exports.burstgpt import burstgpt_rows

    t0 = None
    with atomic_path(path, ".csv") as tmp, open(tmp, "wb") as out:
        for group in row_groups(tables):
            frame = pl.from_arrow(group)
            t0 = frame["arrival_s"].min() if t0 is None else t0
            burstgpt_rows(frame, t0, keep_models=True).write_csv(out, include_header=out.tell() == 0)
    return path


def write_generated(tables: Iterable[pa.Table], path: str | Path, fmt: str, metadata: dict) -> Path:
    """Write the tables (canonical, in arrival order) one row group at a time: memory holds one."""
    path = Path(path)
    tables = iter(tables)
    first = next(tables, None)
    base = first.schema if first is not None else CANONICAL  # canonical, plus hash_ids when sessions make them
    tables = itertools.chain([first] if first is not None else [], tables)
    if fmt == "parquet":
        meta = {k.encode(): (json.dumps(v) if not isinstance(v, str) else v).encode() for k, v in metadata.items()}
        schema = base.with_metadata(meta)
        # no dictionary for float columns: arrival times are all distinct, so a dictionary was built
        # and dropped in every row group (-29 % of the write, and a smaller file); their bytes split
        # by position instead (BYTE_STREAM_SPLIT: the exponent bytes compress; -26 % of the file, -5 %
        # of the write)
        floats = [f.name for f in schema if pa.types.is_floating(f.type)]
        coded = [f.name for f in schema if f.name not in floats]
        with atomic_path(path, ".parquet") as tmp, pq.ParquetWriter(tmp, schema, compression="zstd", use_dictionary=coded,
                                                                     use_byte_stream_split=floats) as w:
            for group in row_groups(tables):
                w.write_table(group.replace_schema_metadata(meta), row_group_size=ROW_GROUP)
        return path
    if fmt == "csv":
        with atomic_path(path, ".csv") as tmp, pacsv.CSVWriter(tmp, base) as w:
            for group in row_groups(tables):
                w.write_table(group)
        return path
    if fmt == "burstgpt":  # the trace in BurstGPT's schema (tool inputs: `servetrace export --to burstgpt`)
        return _write_burstgpt(tables, path)
    # A tool's format goes through the row exporters, which read a canonical Parquet trace.
    try:
        from servetrace.exports import export
    except ImportError:
        raise ServetraceError(f"--format {fmt}: the {fmt} exporter is not available in this build") from None
    with scratch_dir(path) as tmp:
        rows = Path(tmp) / REQUESTS
        write_generated(tables, rows, "parquet", {})
        export(rows, fmt, path)
    return path
