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
    return (f"list_transform(list_filter(s.timing_events, lambda e: e.event_type in {kinds}), "
            f"lambda e: epoch(try_cast(e.timestamp as timestamptz)))")


def select_sql(records: str) -> str:
    """One row per round of `records` (records.jsonl_records); its turn is left to finish_sql."""
    return f"""
    with rounds as (
        select _line, _record, _problem, s,
               list_max({_event_times(INPUT_EVENTS)}) as last_input,
               list_min({_event_times(OUTPUT_EVENTS)}) as first_output,
               list_max({_event_times(OUTPUT_EVENTS)}) as last_output,
               len(list_filter(s.timing_events, lambda e: e.event_type = 'user_message')) > 0 as from_user
        from ({typed(records, ROUND, 'timing_events', keep_record=True)})
    ),
    fields as (
        select _line, _record,
               coalesce(_problem, case when coalesce(last_input, first_output) is null
                                       then 'no timestamped input or output event' end) as _problem,
               coalesce(last_input, first_output) as sent, last_output, from_user,
               s.user as client_id, s.session_id as session_id, s.model as model, s.provider as service,
               s.input_tokens_total as input_tokens, s.output_tokens as output_tokens,
               s.reasoning_output_tokens as reason_tokens, s.prefix_tokens as cached_tokens,
               try_cast(s.round_index as bigint) as round_index
        from rounds
    ),
    final as (
        select _line, _record, _problem,
               case when _problem is null then cast(sent as varchar) end as arrival_s,
               client_id, session_id, model, service, input_tokens, output_tokens, reason_tokens, cached_tokens,
               cast(greatest(last_output - sent, 0) as varchar) as latency_s,
               coalesce(from_user, false) as _from_user, round_index as _round
        from fields
    )
    select * from final order by _line"""


def finish_sql(parts: str) -> str:
    """`parts` (every chunk's rounds, in line order) with each round's turn: the rounds of its
    session fed by a user message so far (at least 1), in round order. The window reads only the
    narrow columns; a positional join puts its turns back beside the rows, both in line order."""
    return f"""
    select p.* exclude (_from_user, _round), t.turn
    from read_parquet({parts}) p positional join (
        select cast(greatest(1, sum(cast(_from_user as int)) over (
                   partition by session_id order by _round, _line
                   rows between unbounded preceding and current row)) as varchar) as turn
        from read_parquet({parts}) order by _line) t"""
