"""Weka / SemiAnalysis cc-traces (kv-cache-tester): a directory of JSON files, one trace each.

Schema: callanjfox/kv-cache-tester docs/trace_replay_tester.md ("Trace Format", "Timing
Strategies", "Sub-Agent Handling") and AIPerf 0.13's models of it
(aiperf/dataset/loader/weka_trace_models.py: WekaTrace, WekaNormalRequest, WekaStreamingRequest,
WekaSubagentEntry). A trace is one session: `requests[]` interleaves calls (`type` n / s) and
subagent markers (`type: subagent`, with the subagent's own `requests[]`). `t` counts seconds
from the conversation's start; no trace says when its conversation started, so every session
starts at 0 on its own clock.
"""

from __future__ import annotations

from pathlib import Path

from servetrace.ingest.agentic.records import one_each, typed
from servetrace.ingest.canonical import MAX_RECORD_CHARS

NAME = "cc-traces"
CONTAINER = "dir"
KEYS = ("id", "block_size", "requests")
TIME_UNIT = "s"
ORIGIN = "none"
FAILED = "false"
HASH_IDS = True
COLUMNS = ("arrival_s", "session_id", "model", "input_tokens", "output_tokens", "latency_s", "ttft_s", "turn",
           "request_id", "parent_id", "call_kind", "hash_ids")
ID_STRIDE = 1 << 32  # hash ids are scoped per trace (hash_id_scope "local"): trace n's ids move by n x this


def looks_like(path: Path) -> bool:
    """A directory of .json files is read as cc-traces (a file that is not a trace is a reject)."""
    return any(path.glob("*.json"))


def one_trace_file(path: Path) -> bool:
    """A single (pretty-printed) trace object: a .json file opening with `{` and naming the trace keys."""
    if path.suffix != ".json" or not path.is_file():
        return False
    with open(path, "rb") as f:
        head = f.read(1 << 16).decode("utf-8", "replace")
    return head.lstrip().startswith("{") and all(f'"{k}"' in head for k in KEYS)


CALL = ('"t": "VARCHAR", "type": "VARCHAR", "model": "VARCHAR", "in": "VARCHAR", "out": "VARCHAR", '
        '"hash_ids": "VARCHAR", "api_time": "VARCHAR", "ttft": "VARCHAR", "stop": "VARCHAR"')
TRACE = f'{{"id": "VARCHAR", "requests": [{{{CALL}, "agent_id": "VARCHAR", "requests": [{{{CALL}}}]}}]}}'


def select_sql(records: str) -> str:
    """One row per call (and per subagent call) of the traces in `records` (records.json_file_records)."""
    ids = "try_cast(c.hash_ids as bigint[])"
    return f"""
    with entries as (
        select _line, _record, _problem, s.id as sid,
               unnest({one_each('s.requests')}) as r, unnest({one_each('range(1, len(s.requests) + 1)')}) as k
        from ({typed(records, TRACE, 'requests')})
    ),
    placed as (
        -- a user turn ends with a main call whose stop reason is end_turn; a subagent belongs to
        -- the turn it was spawned in
        select * replace (coalesce(_problem, case
                   when r.type is null or r.type not in ('n', 's', 'subagent')
                       then 'requests[' || (k - 1) || ']: type ' || coalesce(r.type, 'missing') || ' is not n, s or subagent'
                   when r.type = 'subagent' and r.requests is null
                       then 'requests[' || (k - 1) || ']: subagent requests missing or not a list' end) as _problem),
               1 + coalesce(sum(case when r.type in ('n', 's') and r.stop = 'end_turn' then 1 else 0 end)
                   over (partition by _line order by k rows between unbounded preceding and 1 preceding), 0) as turn
        from entries
    ),
    calls as (
        select _line, _record, _problem, sid, k, r.type as kind, r.agent_id as agent, turn,
               cast(to_json(r) as varchar) as entry_text,
               unnest(case when _problem is not null then [null]
                           when r.type = 'subagent' then r.requests
                           else [struct_pack(t := r.t, type := r.type, model := r.model, "in" := r."in",
                                             out := r.out, hash_ids := r.hash_ids, api_time := r.api_time,
                                             ttft := r.ttft, stop := r.stop)] end) as c,
               unnest(case when _problem is null and r.type = 'subagent' then range(1, len(r.requests) + 1)
                           else [0] end) as m
        from placed
    ),
    final as (
        select _line, k as _k, m as _m,
               case when m > 0 then 'requests[' || (k - 1) || '].requests[' || (m - 1) || ']'
                    when k is not null then 'requests[' || (k - 1) || ']' end as _item,
               left(case when _problem is null then call_text else coalesce(entry_text, _record) end,
                    {MAX_RECORD_CHARS}) as _record,
               _problem,
               c.t as arrival_s,
               case when _problem is null then sid end as session_id,
               c.model as model,
               c."in" as input_tokens,
               c.out as output_tokens,
               c.api_time as latency_s,
               c.ttft as ttft_s,
               case when _problem is null then cast(turn as varchar) end as turn,
               case when _problem is null then sid || '/' || k || (case when kind = 'subagent' then '/' || m else '' end) end
                   as request_id,
               case when _problem is null and kind = 'subagent' then sid || '/' || coalesce(agent, cast(k as varchar)) end
                   as parent_id,
               case when _problem is null then case when kind = 'subagent' then 'subagent' else 'main' end end as call_kind,
               case when {ids} is null then c.hash_ids
                    else cast(list_transform({ids}, lambda x: x + (_line - 1) * {ID_STRIDE}) as varchar) end as hash_ids
        -- to_json on every call: DuckDB holds the memory of a JSON function run only under a CASE
        from (select *, cast(to_json(c) as varchar) as call_text from calls)
    )
    -- in the source's order (unnest runs in parallel): ties in arrival keep it
    select * exclude (_k, _m) from final order by _line, _k, _m"""
