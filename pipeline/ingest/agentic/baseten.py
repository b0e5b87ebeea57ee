"""Baseten trace Parquet: one completion request per row.

Schema: AIPerf 0.13 docs "Baseten Trace Replay" (docs.nvidia.com/aiperf/v0.13.0/benchmark-modes/
baseten-trace-replay: core and optional columns, session column choice) and its model
(aiperf/dataset/loader/baseten_trace.py BasetenTrace: timestamp_start_unix_ms "request start
timestamp in Unix milliseconds", duration_e2e_ms "end-to-end request duration in milliseconds",
total_hashes "KV-cache block hashes aligned to block_size"). `duration_ttft_ms` and
`request_canceled` are listed there without a description: read by their names.
"""

from __future__ import annotations

from pathlib import Path

from servetrace.ingest.agentic.records import scaled
from servetrace.ingest.queries import statement

NAME = "baseten"
CONTAINER = "parquet"
KEYS = ("timestamp_start_unix_ms", "input_tokens", "output_tokens")
TIME_UNIT = "ms"
ORIGIN = "day"
FAILED = "false"
HASH_IDS = True
COLUMNS = ("arrival_s", "session_id", "input_tokens", "output_tokens", "latency_s", "ttft_s", "canceled",
           "hash_ids")
SESSION_COLUMNS = ("provided_session_id", "poor_man_session_id")  # AIPerf's default, then its fallback


def select_sql(path: Path, source: str | None = None, line: str = "row_number() over ()") -> str:
    """One row per request of the Parquet file `path` (read as a stream: no chunks needed); or of
    `source`, a relation of its rows whose place in the file (from 1) is `line` (Spark's pieces)."""
    import pyarrow.parquet as pq

    from servetrace.ingest.canonical import clipped, lit

    names = set(pq.read_schema(path).names)

    def text(col: str, factor: float | None = None) -> str:
        if col not in names:
            return "null::varchar"
        v = f'cast("{col}" as varchar)'
        return scaled(v, factor) if factor else v

    session = next((c for c in SESSION_COLUMNS if c in names), None)
    record = " || ',' || ".join(f"coalesce(cast(\"{c}\" as varchar), '')" for c in sorted(KEYS))
    return statement("agentic/baseten", record=clipped(record),
                     arrival_s=text("timestamp_start_unix_ms"), session_id=text(session) if session else "null::varchar",
                     input_tokens=text("input_tokens"), output_tokens=text("output_tokens"),
                     latency_s=text("duration_e2e_ms", 0.001), ttft_s=text("duration_ttft_ms", 0.001),
                     canceled=text("request_canceled"), hash_ids=text("total_hashes"), line=line,
                     source=source or f"read_parquet({lit(str(path))})")
