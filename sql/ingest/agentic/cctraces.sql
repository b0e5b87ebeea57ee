-- cc-traces (ingest/agentic/cctraces.py): one row per call (and per subagent call) of the traces
-- in `records`, every field as text, in the source's order. Filled in by Python: the typed traces,
-- the one-element-per-problem lists, the clipped call and entry records, the hash ids as a list, the
-- per-trace id stride, and the user turns that ended before the record's first entry (0 but for a
-- piece of a trace file split by ingest/agentic/split.py, whose positions start where it starts).
with entries as (
    select _line, _record, _problem, s.id as sid,
           unnest({requests}) as r, unnest({positions}) as k
    from ({traces})
),
placed as (
    -- a user turn ends with a main call whose stop reason is end_turn; a subagent belongs to
    -- the turn it was spawned in
    select * replace (coalesce(_problem, case
               when r.type is null or r.type not in ('n', 's', 'subagent')
                   then 'requests[' || (k - 1) || ']: type ' || coalesce(r.type, 'missing') || ' is not n, s or subagent'
               when r.type = 'subagent' and r.requests is null
                   then 'requests[' || (k - 1) || ']: subagent requests missing or not a list' end) as _problem),
           {turns} + 1 + coalesce(sum(case when r.type in ('n', 's') and r.stop = 'end_turn' then 1 else 0 end)
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
           case when _problem is null then {call_record} else coalesce({entry_record}, _record) end as _record,
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
           case when try_cast(c.hash_ids as bigint[]) is null then c.hash_ids
                else cast(list_transform(try_cast(c.hash_ids as bigint[]), lambda x: x + (_line - 1) * {id_stride})
                          as varchar) end as hash_ids
    -- to_json on every call: DuckDB holds the memory of a JSON function run only under a CASE
    from (select *, cast(to_json(c) as varchar) as call_text from calls)
)
-- in the source's order (unnest runs in parallel): ties in arrival keep it
select * exclude (_k, _m) from final order by _line, _k, _m
