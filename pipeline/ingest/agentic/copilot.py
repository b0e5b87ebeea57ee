"""GitHub Copilot coding-agent traces 2026 (Azure Public Dataset): gzip JSONL, one session per line.

Schema: AzurePublicDataset GitHubCopilotCodingAgentDataset2026.md and
analysis/GitHubCopilotCodingAgents/schema.json (+ trace_loader.py, which reads `timestamp` as an
ISO-8601 start and ends a call at timestamp + duration_ms). Each session holds `turns[]` (in time
order), each turn `llm_calls[]`; one row per LLM call.
"""

from __future__ import annotations

from servetrace.ingest.agentic.records import scaled, typed
from servetrace.ingest.canonical import clipped
from servetrace.ingest.queries import statement

NAME = "copilot"
CONTAINER = "jsonl"
KEYS = ("session_id", "turns")
TIME_UNIT = "datetime"
ORIGIN = "day"
FAILED = "false"  # `result` values other than Success / UserCancel are not published
HASH_IDS = False
COLUMNS = ("arrival_s", "session_id", "model", "input_tokens", "output_tokens", "cached_tokens", "latency_s",
           "canceled", "turn", "request_id", "tool_s", "tool_calls", "tool_failures", "auto_continued")


CALL = ('{"message_id": "VARCHAR", "timestamp": "VARCHAR", "duration_ms": "VARCHAR", "model": "VARCHAR", '
        '"result": "VARCHAR", "tokens": {"prompt": "VARCHAR", "completion": "VARCHAR", "cached": "VARCHAR"}}')
BATCH = ('{"request_id": "VARCHAR", "duration_ms": "VARCHAR", "auto_continue": "VARCHAR", '
         '"function_calls": [{"status": "VARCHAR"}]}')
SESSION = f'{{"session_id": "VARCHAR", "turns": [{{"llm_calls": [{CALL}], "tool_batches": [{BATCH}]}}]}}'


def select_sql(records: str) -> str:
    """One row per call of the sessions in `records` (records.jsonl_records): sql/ingest/agentic/copilot.sql."""
    return statement("agentic/copilot", sessions=typed(records, SESSION, "turns"), turn_record=clipped("turn_text"),
                     call_record=clipped("call_text"),
                     latency_s=scaled("c.duration_ms", 0.001))
