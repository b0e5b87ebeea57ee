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

from servetrace.ingest.agentic.records import json_file_records, needing_list, problem_rows

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


def _call(r: str, session: str, line: str) -> dict[str, str]:
    """The canonical fields of one n / s entry `r` (JSON)."""
    ids = f"try_cast({r} -> 'hash_ids' as bigint[])"
    return {
        "arrival_s": f"{r} ->> 't'",
        "session_id": session,
        "model": f"{r} ->> 'model'",
        "input_tokens": f"{r} ->> 'in'",
        "output_tokens": f"{r} ->> 'out'",
        "latency_s": f"{r} ->> 'api_time'",
        "ttft_s": f"{r} ->> 'ttft'",
        "hash_ids": (f"case when {ids} is null then cast({r} -> 'hash_ids' as varchar) else "
                     f"cast(list_transform({ids}, lambda x: x + ({line} - 1) * {ID_STRIDE}) as varchar) end"),
    }


def select_sql(path: Path, compression: str) -> str:
    del compression  # each file is read whole by read_text
    glob = str(path / "*.json") if path.is_dir() else str(path)
    from servetrace.ingest.canonical import lit

    main = _call("r", "sid", "_line")
    sub = _call("c", "sid", "_line")
    return f"""
    with src as ({needing_list(json_file_records(lit(glob)), 'requests')}),
    entries as (
        select _line, j ->> 'id' as sid, unnest(json_extract(j, '$.requests[*]')) as r,
               unnest(range(1, cast(json_array_length(j, '$.requests') as bigint) + 1)) as k
        from src where _problem is null
    ),
    placed as (
        -- a user turn ends with a main call whose stop reason is end_turn; a subagent belongs to
        -- the turn it was spawned in
        select *, r ->> 'type' as kind,
               1 + coalesce(sum(case when r ->> 'type' in ('n', 's') and r ->> 'stop' = 'end_turn' then 1 else 0 end)
                   over (partition by _line order by k rows between unbounded preceding and 1 preceding), 0) as turn
        from entries
    ),
    subagents as (
        select _line, sid, turn, k, r ->> 'agent_id' as agent,
               unnest(json_extract(r, '$.requests[*]')) as c,
               unnest(range(1, cast(json_array_length(r, '$.requests') as bigint) + 1)) as m
        from placed where kind = 'subagent' and json_type(r, '$.requests') = 'ARRAY'
    ),
    bad as (
        select _line, left(cast(r as varchar), 65536) as _record,
               case when kind is null or kind not in ('n', 's', 'subagent')
                    then 'requests[' || (k - 1) || ']: type ' || coalesce(kind, 'missing') || ' is not n, s or subagent'
                    else 'requests[' || (k - 1) || ']: subagent requests is not a list' end as _problem
        from placed
        where kind is null or kind not in ('n', 's', 'subagent')
           or (kind = 'subagent' and coalesce(json_type(r, '$.requests'), 'NULL') <> 'ARRAY')
    ),
    final as (
        select _line, left(cast(r as varchar), 65536) as _record, null::varchar as _problem,
               {', '.join(f'{v} as {n}' for n, v in main.items() if n != 'hash_ids')},
               cast(turn as varchar) as turn, sid || '/' || k as request_id, null::varchar as parent_id,
               'main' as call_kind, {main['hash_ids']} as hash_ids
        from placed where kind in ('n', 's')
        union all
        select _line, left(cast(c as varchar), 65536), null,
               {', '.join(f'{v}' for n, v in sub.items() if n != 'hash_ids')},
               cast(turn as varchar), sid || '/' || k || '/' || m, sid || '/' || coalesce(agent, cast(k as varchar)),
               'subagent', {sub['hash_ids']}
        from subagents
        union all {problem_rows('src', COLUMNS)}
        union all {problem_rows('bad', COLUMNS)}
    )
    select * from final"""
