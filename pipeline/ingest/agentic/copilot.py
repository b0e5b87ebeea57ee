"""GitHub Copilot coding-agent traces 2026 (Azure Public Dataset): gzip JSONL, one session per line.

Schema: AzurePublicDataset GitHubCopilotCodingAgentDataset2026.md and
analysis/GitHubCopilotCodingAgents/schema.json (+ trace_loader.py, which reads `timestamp` as an
ISO-8601 start and ends a call at timestamp + duration_ms). Each session holds `turns[]` (in time
order), each turn `llm_calls[]`; one row per LLM call.
"""

from __future__ import annotations

from servetrace.ingest.agentic.records import scaled, typed
from servetrace.ingest.canonical import MAX_RECORD_CHARS

NAME = "copilot"
CONTAINER = "jsonl"
KEYS = ("session_id", "turns")
TIME_UNIT = "datetime"
ORIGIN = "day"
FAILED = "false"  # `result` values other than Success / UserCancel are not published
HASH_IDS = False
COLUMNS = ("arrival_s", "session_id", "model", "input_tokens", "output_tokens", "cached_tokens", "latency_s",
           "canceled", "turn", "request_id", "tool_s")


CALL = ('{"message_id": "VARCHAR", "timestamp": "VARCHAR", "duration_ms": "VARCHAR", "model": "VARCHAR", '
        '"result": "VARCHAR", "tokens": {"prompt": "VARCHAR", "completion": "VARCHAR", "cached": "VARCHAR"}}')
BATCH = '{"request_id": "VARCHAR", "duration_ms": "VARCHAR"}'
SESSION = f'{{"session_id": "VARCHAR", "turns": [{{"llm_calls": [{CALL}], "tool_batches": [{BATCH}]}}]}}'
# A call's tool time: the wall-clock durations of its turn's tool batches whose request_id is the
# call's message_id ("matches with message_id from LLM calls", schema.json), summed; 0 for a call
# that asked for no tools; the first duration that is not a number is kept as text (a reject).
MINE = "list_filter(batches, lambda b: b.request_id = c.message_id)"
TOOL_S = f"""case when batches is null or c.message_id is null then null
    else coalesce(list_filter(list_transform({MINE}, lambda b: b.duration_ms),
                              lambda d: d is not null and try_cast(d as double) is null)[1],
                  cast(coalesce(list_sum(list_transform({MINE}, lambda b: try_cast(b.duration_ms as double))), 0)
                       * 0.001 as varchar)) end"""


def select_sql(records: str) -> str:
    """One row per call of the sessions in `records` (records.jsonl_records)."""
    return f"""
    with turns as (
        select _line, _record, _problem, s.session_id as session_id,
               unnest(coalesce(s.turns, [null])) as t,
               unnest(range(1, coalesce(len(s.turns), 0) + 1)) as turn
        from ({typed(records, SESSION, 'turns')})
    ),
    calls as (
        select _line, _record, session_id, turn, _problem, t.tool_batches as batches,
               unnest(coalesce(t.llm_calls, [null])) as c,
               unnest(range(1, coalesce(len(t.llm_calls), 0) + 1)) as _call
        from (select * replace (coalesce(_problem, case when t.llm_calls is null
                                    then 'turns[' || (turn - 1) || '].llm_calls missing or not a list' end) as _problem,
                                coalesce(_record, case when t.llm_calls is null then turn_text end) as _record)
              from (select *, cast(to_json(t) as varchar) as turn_text from turns))
    ),
    final as (
        select _line, turn as _turn, _call,
               case when _problem is null then left(call_text, {MAX_RECORD_CHARS}) else _record end as _record,
               _problem,
               c.timestamp as arrival_s,
               case when _problem is null then session_id end as session_id,
               c.model as model,
               c.tokens.prompt as input_tokens,
               c.tokens.completion as output_tokens,
               c.tokens.cached as cached_tokens,
               {scaled("c.duration_ms", 0.001)} as latency_s,
               cast(c.result = 'UserCancel' as varchar) as canceled,
               case when _problem is null then cast(turn as varchar) end as turn,
               c.message_id as request_id,
               {TOOL_S} as tool_s,
               case when _call is not null then 'turns[' || (turn - 1) || '].llm_calls[' || (_call - 1) || ']'
                    when turn is not null then 'turns[' || (turn - 1) || ']' end as _item
        -- to_json on every call: DuckDB holds the memory of a JSON function run only under a CASE
        from (select *, cast(to_json(c) as varchar) as call_text from calls)
    )
    -- in the source's order (unnest runs in parallel): ties in arrival keep it
    select * exclude (_turn, _call) from final order by _line, _turn, _call"""
