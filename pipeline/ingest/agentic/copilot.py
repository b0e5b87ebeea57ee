"""GitHub Copilot coding-agent traces 2026 (Azure Public Dataset): gzip JSONL, one session per line.

Schema: AzurePublicDataset GitHubCopilotCodingAgentDataset2026.md and
analysis/GitHubCopilotCodingAgents/schema.json (+ trace_loader.py, which reads `timestamp` as an
ISO-8601 start and ends a call at timestamp + duration_ms). Each session holds `turns[]` (in time
order), each turn `llm_calls[]`; one row per LLM call.
"""

from __future__ import annotations

from pathlib import Path

from servetrace.ingest.canonical import lit
from servetrace.ingest.agentic.records import jsonl_records, needing_list, problem_rows, scaled

NAME = "copilot"
CONTAINER = "jsonl"
KEYS = ("session_id", "turns")
TIME_UNIT = "datetime"
ORIGIN = "day"
FAILED = "false"  # `result` values other than Success / UserCancel are not published
HASH_IDS = False
COLUMNS = ("arrival_s", "session_id", "model", "input_tokens", "output_tokens", "cached_tokens", "latency_s",
           "canceled", "turn", "request_id")


def select_sql(path: Path, compression: str) -> str:
    return f"""
    with src as ({needing_list(jsonl_records(lit(str(path)), compression), 'turns')}),
    turns as (
        select _line, _record, j ->> 'session_id' as session_id,
               unnest(json_extract(j, '$.turns[*]')) as t,
               unnest(range(1, cast(json_array_length(j, '$.turns') as bigint) + 1)) as turn
        from src where _problem is null
    ),
    turn_problems as (
        select _line, _record, 'turns[' || (turn - 1) || '].llm_calls is not a list' as _problem
        from turns where coalesce(json_type(t, '$.llm_calls'), 'NULL') <> 'ARRAY'
    ),
    calls as (
        select _line, session_id, turn, unnest(json_extract(t, '$.llm_calls[*]')) as c
        from turns where json_type(t, '$.llm_calls') = 'ARRAY'
    ),
    final as (
        select _line, left(cast(c as varchar), 65536) as _record,
               case when json_type(c) <> 'OBJECT' then 'llm call not a JSON object' end as _problem,
               c ->> 'timestamp' as arrival_s,
               session_id,
               c ->> 'model' as model,
               c -> 'tokens' ->> 'prompt' as input_tokens,
               c -> 'tokens' ->> 'completion' as output_tokens,
               c -> 'tokens' ->> 'cached' as cached_tokens,
               {scaled("c ->> 'duration_ms'", 0.001)} as latency_s,
               case when c ->> 'result' is null then null
                    else cast(c ->> 'result' = 'UserCancel' as varchar) end as canceled,
               cast(turn as varchar) as turn,
               c ->> 'message_id' as request_id
        from calls
        union all {problem_rows('src', COLUMNS)}
        union all {problem_rows('turn_problems', COLUMNS)}
    )
    select * from final"""
