"""Write a generated table: canonical Parquet or CSV, or a tool's format via servetrace.export."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from servetrace.errors import ServetraceError
from servetrace.io import atomic_path, write_parquet

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


def write_generated(table: pa.Table, path: str | Path, fmt: str, metadata: dict) -> Path:
    path = Path(path)
    if fmt == "parquet":
        return write_parquet(path, table, {k: json.dumps(v) if not isinstance(v, str) else v
                                           for k, v in metadata.items()})
    if fmt == "csv":
        with atomic_path(path, ".csv") as tmp:
            pacsv.write_csv(table, tmp)
        return path
    # A tool's format goes through the row exporters, which read a canonical Parquet trace.
    try:
        from servetrace.export import export
    except ImportError:
        raise ServetraceError(f"--format {fmt}: the {fmt} exporter is not available in this build") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{path.name}.", dir=path.parent) as tmp:
        rows = Path(tmp) / "requests.parquet"
        pq.write_table(table, rows)
        export(rows, fmt, path)
    return path
