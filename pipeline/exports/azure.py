"""Azure LLM inference CSV: `TIMESTAMP,ContextTokens,GeneratedTokens`, the layout of Azure's public
2023 / 2024 traces, for inference-perf's `trace_replay` (inference-perf 0.7.0,
inference_perf/utils/trace_reader.py AzurePublicDatasetReader).

That reader sniffs the header (csv.Sniffer), splits every line on ',' (no quoting, so nothing but
the three columns), parses TIMESTAMP as `%Y-%m-%d %H:%M:%S.%f` in UTC (the fraction cut to 6
digits), counts time from the first row and reads the two counts with int(). So TIMESTAMP is
written with 6 decimals: the trace's origin (when ingest recorded a date) plus arrival_s, to the
microsecond. inference-perf replays the timing (load type trace_replay) and the lengths (data type
random with the same trace); a config doing both is written beside the CSV."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import polars as pl

from servetrace.exports.inference_perf import full_config
from servetrace.exports.rows import beside, read_rows, source_of, write_csv, write_sidecar
from servetrace.exports.tools import command
from servetrace.io import dumps_json, parquet_metadata, write_text

COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
FALLBACK_ORIGIN = datetime(2024, 1, 1)  # when the trace's date is unknown: only differences are read


def trace_origin(rows_path: Path) -> datetime | None:
    """Day 0 as ingest recorded it (`2023-11-16T00:00:00 (UTC), ...`), None when the source had no date."""
    found = re.match(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", parquet_metadata(rows_path).get("servetrace.origin") or "")
    return datetime.fromisoformat(found.group(0)) if found else None


def azure_rows(rows: pl.DataFrame, origin: datetime) -> pl.DataFrame:
    micros = (pl.col("arrival_s") * 1_000_000).round().cast(pl.Int64)
    stamp = pl.lit(origin) + pl.duration(microseconds=micros)
    return rows.select(
        stamp.dt.strftime("%Y-%m-%d %H:%M:%S%.6f").alias("TIMESTAMP"),
        pl.col("input_tokens").cast(pl.Int64).alias("ContextTokens"),
        pl.col("output_tokens").cast(pl.Int64).alias("GeneratedTokens"),
    )


def export_azure(rows_path: Path, out: str | Path) -> dict:
    out = Path(out)
    rows = read_rows(rows_path)
    origin = trace_origin(rows_path)
    frame = azure_rows(rows, origin or FALLBACK_ORIGIN)
    write_csv(frame, out)
    trace = {"file": out.name, "format": "AzurePublicDataset"}
    cfg = full_config({"load": {"type": "trace_replay", "trace": trace}, "data": {"type": "random", "trace": trace}})
    cfg_file = beside(out, ".inference-perf.yml")
    write_text(cfg_file, dumps_json(cfg))
    consumers = {"inference-perf": command("inference-perf", f"inference-perf --config_file {cfg_file.name}")}
    write_sidecar(out, {
        "format": "Azure LLM inference CSV", "timestamp_unit": "datetime, 6 decimals (UTC as inference-perf reads it)",
        "time_origin": f"{origin.isoformat()} (the trace's day 0)" if origin else
                       f"{FALLBACK_ORIGIN.isoformat()} (the trace's date is unknown; only differences matter)",
        "source": source_of(rows_path), "requests": frame.height,
        "zero_tokens": {"ContextTokens": int((frame["ContextTokens"] < 1).sum()),
                        "GeneratedTokens": int((frame["GeneratedTokens"] < 1).sum())},
        "inference_perf_config": cfg_file.name,
        "consumers": consumers,
        "caveats": {"inference-perf": "replays arrival times and both lengths, one request per row (prompts are "
                                      "random tokens: no prefix sharing, no sessions); run it from the CSV's "
                                      "directory (the config names the file relative to it); set server.model_name "
                                      "and base_url"},
    })
    return {"format": "azure", "path": str(out), "requests": frame.height, "config": str(cfg_file),
            "commands": consumers}
