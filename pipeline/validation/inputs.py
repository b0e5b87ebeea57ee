"""Read a request table for comparison: an output directory, a canonical Parquet file, or a raw
trace (ingested on the way into a work directory)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from servetrace import io
from servetrace.errors import ServetraceError
from servetrace.outputs import REQUESTS

NEEDED = ("arrival_s", "input_tokens", "output_tokens")
COLUMNS = ("arrival_s", "client_id", "input_tokens", "output_tokens", "reason_tokens", "failed")


def _is_canonical_parquet(path: Path) -> bool:
    if path.suffix.lower() != ".parquet":
        return False
    try:
        names = set(io.parquet_columns(path))
    except Exception as exc:  # not Parquet after all: a clear message, not a traceback
        raise ServetraceError(f"{path}: not a readable Parquet file ({type(exc).__name__})") from None
    return all(n in names for n in NEEDED)


def _read(path: Path) -> pl.DataFrame:
    names = io.parquet_columns(path)
    missing = [n for n in NEEDED if n not in names]
    if missing:
        raise ServetraceError(f"{path}: not a canonical request table (missing {', '.join(missing)})")
    try:
        return pl.from_arrow(io.read_parquet(path, [c for c in COLUMNS if c in names]))
    except Exception as exc:
        raise ServetraceError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from None


def requests_path(path: str | Path, work_dir: str | Path) -> Path:
    """The canonical requests.parquet for `path`, ingesting a raw trace into `work_dir` if needed."""
    path = Path(path)
    if path.is_dir():
        found = path / REQUESTS
        if not found.exists():  # a file, or Spark's directory of parts
            raise ServetraceError(f"{path}: a directory without {REQUESTS} (run `servetrace ingest` first)")
        return found
    if not path.is_file():
        raise ServetraceError(f"{path}: no such file or directory")
    if _is_canonical_parquet(path):
        return path
    try:
        from servetrace.ingest import ingest_trace
        from servetrace.settings import IngestSettings
    except ImportError:
        raise ServetraceError(f"{path}: a raw trace needs the ingest stage, which is not available") from None
    summary = ingest_trace(path, Path(work_dir), IngestSettings())
    return Path(summary["requests"])


def load_requests(path: str | Path, work_dir: str | Path) -> pl.DataFrame:
    """The columns fidelity and provisioning need, sorted by arrival."""
    df = _read(requests_path(path, work_dir))
    if df.height == 0:
        raise ServetraceError(f"{path}: no requests")
    return df.sort("arrival_s", maintain_order=True)
