"""TraceLab (uw-syfi): JSONL, one LLM round per line.

Schema: uw-syfi/TraceLab README ("Data format", "Token accounting", "Latency fields") and
artifacts/utils/DB_SCHEMA.md; the submission time follows AIPerf 0.13's reading of the corpus
(aiperf/dataset/loader/_tracelab_convert.py round_timing): a round is sent when its last input
event (`user_message` / `tool_result`) lands, else at its first output event (`text`,
`reasoning`, `tool_call`); TraceLab records no server latency, so latency_s is that proxy's
span to the last output event. Subagents appear as sessions of their own with no parent link.
"""

from __future__ import annotations

from servetrace.ingest.agentic.records import typed
from servetrace.ingest.queries import statement

NAME = "tracelab"
CONTAINER = "jsonl"
KEYS = ("session_id", "round_index", "prefix_tokens", "newly_append_tokens", "timing_events")
TIME_UNIT = "s"
ORIGIN = "day"
FAILED = "false"
HASH_IDS = False
COLUMNS = ("arrival_s", "client_id", "session_id", "model", "service", "input_tokens", "output_tokens",
           "reason_tokens", "cached_tokens", "latency_s", "turn")
INPUT_EVENTS = "('user_message', 'tool_result')"
OUTPUT_EVENTS = "('text', 'reasoning', 'tool_call')"


ROUND = ('{"session_id": "VARCHAR", "round_index": "VARCHAR", "user": "VARCHAR", "model": "VARCHAR", '
         '"provider": "VARCHAR", "input_tokens_total": "VARCHAR", "output_tokens": "VARCHAR", '
         '"reasoning_output_tokens": "VARCHAR", "prefix_tokens": "VARCHAR", '
         '"timing_events": [{"event_type": "VARCHAR", "timestamp": "VARCHAR"}]}')


def _event_times(kinds: str) -> str:
    return statement("agentic/tracelab_event_times", kinds=kinds)


def select_sql(records: str) -> str:
    """One row per round of `records` (records.jsonl_records); its turn is left to finish_sql."""
    return statement("agentic/tracelab", rounds=typed(records, ROUND, "timing_events", keep_record=True),
                     input_times=_event_times(INPUT_EVENTS), output_times=_event_times(OUTPUT_EVENTS))


def finish_sql(parts: str) -> str:
    """`parts` (every chunk's rounds, in line order) with each round's turn (sql/ingest/agentic/tracelab_turns.sql)."""
    return statement("agentic/tracelab_turns", parts=parts, turn=statement("agentic/tracelab_turn"))


def finish_view_sql() -> str:
    """The view `parts` (every round) with each round's turn, as one window (Spark's form of finish_sql)."""
    return statement("agentic/tracelab_turns_window", turn=statement("agentic/tracelab_turn"))
