"""TraceLab (uw-syfi): JSONL, one LLM round per line.

Schema: uw-syfi/TraceLab README ("Data format", "Token accounting", "Latency fields") and
artifacts/utils/DB_SCHEMA.md; the submission time follows AIPerf 0.13's reading of the corpus
(aiperf/dataset/loader/_tracelab_convert.py round_timing): a round is sent when its last input
event (`user_message` / `tool_result`) lands, else at its first output event (`text`,
`reasoning`, `tool_call`); TraceLab records no server latency, so latency_s is that proxy's
span to the last output event. Subagents appear as sessions of their own with no parent link.
"""

from __future__ import annotations

from pathlib import Path

from servetrace.ingest.canonical import lit
from servetrace.ingest.agentic.records import jsonl_records, needing_list, problem_rows

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


def _event_times(kinds: str) -> str:
    return (f"list_transform(list_filter(events, lambda e: (e ->> 'event_type') in {kinds}), "
            f"lambda e: epoch(try_cast(e ->> 'timestamp' as timestamptz)))")


def select_sql(path: Path, compression: str) -> str:
    return f"""
    with src as ({needing_list(jsonl_records(lit(str(path)), compression), 'timing_events')}),
    rounds as (
        select *, list_max({_event_times(INPUT_EVENTS)}) as last_input,
               list_min({_event_times(OUTPUT_EVENTS)}) as first_output,
               list_max({_event_times(OUTPUT_EVENTS)}) as last_output,
               len(list_filter(events, lambda e: (e ->> 'event_type') = 'user_message')) > 0 as from_user
        from (select *, json_extract(j, '$.timing_events[*]') as events from src where _problem is null)
    ),
    timed as (
        select *, coalesce(last_input, first_output) as sent from rounds
    ),
    final as (
        select _line, _record,
               case when sent is null then 'no timestamped input or output event' end as _problem,
               cast(sent as varchar) as arrival_s,
               j ->> 'user' as client_id,
               j ->> 'session_id' as session_id,
               j ->> 'model' as model,
               j ->> 'provider' as service,
               j ->> 'input_tokens_total' as input_tokens,
               j ->> 'output_tokens' as output_tokens,
               j ->> 'reasoning_output_tokens' as reason_tokens,
               j ->> 'prefix_tokens' as cached_tokens,
               cast(greatest(last_output - sent, 0) as varchar) as latency_s,
               cast(greatest(1, sum(cast(from_user as int)) over (
                   partition by j ->> 'session_id' order by try_cast(j ->> 'round_index' as bigint), _line
                   rows between unbounded preceding and current row)) as varchar) as turn
        from timed
        union all {problem_rows('src', COLUMNS)}
    )
    select * from final"""
