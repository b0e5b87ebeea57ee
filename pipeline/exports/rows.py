"""Request rows for the row exporters: a canonical Parquet trace (ingested or generated), sorted by arrival."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from servetrace.errors import ServetraceError
from servetrace.io import atomic_path, dumps_json, parquet_metadata, parquet_parts, write_text

REQUIRED = ("arrival_s", "input_tokens", "output_tokens")


def read_rows(path: Path) -> pl.DataFrame:
    try:
        frame = pl.read_parquet(parquet_parts(path))
    except Exception as exc:  # noqa: BLE001 - polars raises several types for an unreadable file
        raise ServetraceError(f"{path}: not a readable Parquet table ({str(exc).splitlines()[0]})") from None
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise ServetraceError(f"{path}: missing column(s) {', '.join(missing)}")
    if frame.height == 0:
        raise ServetraceError(f"{path}: no requests to export")
    if frame.select(pl.col(*REQUIRED).null_count()).sum_horizontal().item():
        raise ServetraceError(f"{path}: null arrival_s / input_tokens / output_tokens")
    if "failed" not in frame.columns:
        frame = frame.with_columns(pl.lit(False).alias("failed"))
    return frame.sort("arrival_s", maintain_order=True)


def source_of(path: Path) -> dict:
    meta = parquet_metadata(path)
    return {"rows": str(path), "source": meta.get("servetrace.source"), "sha256": meta.get("servetrace.sha256"),
            "format": meta.get("servetrace.format")}


def sidecar_path(out: Path) -> Path:
    """`trace.jsonl` -> `trace.jsonl.meta.json`, beside the export (the whole name, so exports that share a
    stem, `out.jsonl` and `out.csv`, keep their own sidecars)."""
    return out.with_name(out.name + ".meta.json")


def write_sidecar(out: Path, sidecar: dict) -> Path:
    return write_text(sidecar_path(out), dumps_json(sidecar))


def beside(out: Path, tail: str) -> Path:
    """A companion file next to the export: `trace.csv` with tail `_without_fails.csv` -> `trace_without_fails.csv`."""
    return out.with_name(out.stem + tail)


def write_csv(frame: pl.DataFrame, path: Path, **options) -> Path:
    """`frame` as CSV at `path`, atomically."""
    with atomic_path(path, ".csv") as tmp:
        frame.write_csv(tmp, **options)
    return path
