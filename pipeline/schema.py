"""The canonical request table: one row per request, sorted by arrival (see DESIGN.md)."""

import pyarrow as pa

CANONICAL = pa.schema(
    [
        ("arrival_s", pa.float64()),
        ("client_id", pa.string()),
        ("session_id", pa.string()),
        ("model", pa.string()),
        ("service", pa.string()),
        ("input_tokens", pa.int32()),
        ("output_tokens", pa.int32()),
        ("reason_tokens", pa.int32()),
        ("image_count", pa.int32()),
        ("image_tokens", pa.int32()),
        ("latency_s", pa.float64()),
        ("failed", pa.bool_()),
        # Agent traces (null where the source does not record them; see README, canonical table)
        ("cached_tokens", pa.int32()),  # prompt tokens served from the prefix cache
        ("canceled", pa.bool_()),  # the client canceled the request
        ("ttft_s", pa.float64()),  # time to first token, as the source measured it
        ("turn", pa.int32()),  # user turn of the session the call belongs to, from 1
        ("request_id", pa.string()),  # the call's own id, unique within the trace
        ("parent_id", pa.string()),  # request_id of the call (or agent) that led to this one
        ("call_kind", pa.string()),  # "main" (the session's own agent) or "subagent"
        ("tool_s", pa.float64()),  # seconds the tools this call asked for ran before the chain's next call
        ("tool_calls", pa.int32()),  # tools this call asked for (0: none)
        ("tool_failures", pa.int32()),  # of those, the ones that failed or timed out
        ("auto_continued", pa.bool_()),  # the agent went on by itself after this call's tools ran
    ]
)
COLUMNS = CANONICAL.names
# DuckDB types of the canonical columns, for SQL that builds the table.
SQL_TYPES = {
    "arrival_s": "DOUBLE",
    "client_id": "VARCHAR",
    "session_id": "VARCHAR",
    "model": "VARCHAR",
    "service": "VARCHAR",
    "input_tokens": "INTEGER",
    "output_tokens": "INTEGER",
    "reason_tokens": "INTEGER",
    "image_count": "INTEGER",
    "image_tokens": "INTEGER",
    "latency_s": "DOUBLE",
    "failed": "BOOLEAN",
    "cached_tokens": "INTEGER",
    "canceled": "BOOLEAN",
    "ttft_s": "DOUBLE",
    "turn": "INTEGER",
    "request_id": "VARCHAR",
    "parent_id": "VARCHAR",
    "call_kind": "VARCHAR",
    "tool_s": "DOUBLE",
    "tool_calls": "INTEGER",
    "tool_failures": "INTEGER",
    "auto_continued": "BOOLEAN",
}
# The agent columns: older formats leave them all null.
AGENT_COLUMNS = ("cached_tokens", "canceled", "ttft_s", "turn", "request_id", "parent_id", "call_kind", "tool_s",
                 "tool_calls", "tool_failures", "auto_continued")
CALL_KINDS = ("main", "subagent")
# Optional trailing column, present only when the source carries KV-cache block hashes
# (Mooncake, Bailian): the prefix-reuse stage reads it.
HASH_IDS = "hash_ids"

# `item`: where in its source record a refused call sits, for formats of several calls per record
# (`turns[0].llm_calls[2]`); null elsewhere. (line, item) is unique.
REJECTS = pa.schema([("line", pa.int64()), ("item", pa.string()), ("reason", pa.string()), ("record", pa.string())])

# Keys of the Parquet key-value metadata written with requests.parquet.
META_KEYS = (
    "servetrace.format",
    "servetrace.origin",
    "servetrace.source",
    "servetrace.sha256",
    "servetrace.rows_read",
    "servetrace.rows_kept",
    "servetrace.rows_rejected",
    "servetrace.sorted_input",
    "servetrace.ingest_settings",
)
