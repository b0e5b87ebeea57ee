-- GitHub Copilot coding-agent traces (ingest/agentic/copilot.py): one row per LLM call of the
-- sessions in `records`, every field as text, in the source's order. Filled in by Python: the
-- typed sessions, the clipped turn and call records, the latency expression.
-- A call's tools are its turn's `tool_batches` whose request_id is the call's message_id
-- ("matches with message_id from LLM calls", schema.json): `mine` (null when the turn has no
-- tool_batches list or the call no message_id), and `fcalls`, their `function_calls` together.
with turns as (
    select _line, _record, _problem, s.session_id as session_id,
           unnest(coalesce(s.turns, [null])) as t,
           unnest(range(1, coalesce(len(s.turns), 0) + 1)) as turn
    from ({sessions})
),
calls as (
    select _line, _record, session_id, turn, _problem, t.tool_batches as batches,
           unnest(coalesce(t.llm_calls, [null])) as c,
           unnest(range(1, coalesce(len(t.llm_calls), 0) + 1)) as _call
    from (select * replace (coalesce(_problem, case when t.llm_calls is null
                                then 'turns[' || (turn - 1) || '].llm_calls missing or not a list' end) as _problem,
                            coalesce(_record, case when t.llm_calls is null then {turn_record} end) as _record)
          from (select *, cast(to_json(t) as varchar) as turn_text from turns))
),
tools as (
    select *, flatten(list_transform(mine, lambda b: coalesce(b.function_calls, []))) as fcalls
    from (select *, case when batches is not null and c.message_id is not null
                         then list_filter(batches, lambda b: b.request_id = c.message_id) end as mine
          from calls)
),
final as (
    select _line, turn as _turn, _call,
           case when _problem is null then {call_record} else _record end as _record,
           -- a tool status the schema does not define ("1 = success, 2 = failure/timeout")
           coalesce(_problem, case when list_bool_or(list_transform(fcalls, lambda f:
                        coalesce(try_cast(f.status as double) not in (1, 2), true)))
                    then 'tool_batches[].function_calls[].status not 1 (success) or 2 (failure/timeout)' end)
               as _problem,
           c.timestamp as arrival_s,
           case when _problem is null then session_id end as session_id,
           c.model as model,
           c.tokens.prompt as input_tokens,
           c.tokens.completion as output_tokens,
           c.tokens.cached as cached_tokens,
           {latency_s} as latency_s,
           cast(c.result = 'UserCancel' as varchar) as canceled,
           case when _problem is null then cast(turn as varchar) end as turn,
           c.message_id as request_id,
           -- the batches' wall-clock durations summed, in seconds (0: the call asked for no tools);
           -- the first duration that is not a number is kept as text (a reject)
           case when mine is not null then coalesce(
               list_filter(list_transform(mine, lambda b: b.duration_ms),
                           lambda d: d is not null and try_cast(d as double) is null)[1],
               cast(coalesce(list_sum(list_transform(mine, lambda b: try_cast(b.duration_ms as double))), 0)
                    * 0.001 as varchar)) end as tool_s,
           cast(len(fcalls) as varchar) as tool_calls,
           cast(list_count(list_filter(fcalls, lambda f: try_cast(f.status as double) = 2)) as varchar)
               as tool_failures,
           -- true when every batch of the call auto-continued, false when one did not; the first
           -- value that is no flag is kept as text (a reject); null with no batch or no value
           coalesce(list_filter(list_transform(mine, lambda b: b.auto_continue),
                                lambda a: a is not null and try_cast(lower(trim(a)) as boolean) is null)[1],
                    cast(list_bool_and(list_transform(mine, lambda b: try_cast(lower(trim(b.auto_continue)) as boolean)))
                         as varchar)) as auto_continued,
           case when _call is not null then 'turns[' || (turn - 1) || '].llm_calls[' || (_call - 1) || ']'
                when turn is not null then 'turns[' || (turn - 1) || ']' end as _item
    -- to_json on every call: DuckDB holds the memory of a JSON function run only under a CASE
    from (select *, cast(to_json(c) as varchar) as call_text from tools)
)
-- in the source's order (unnest runs in parallel): ties in arrival keep it
select * exclude (_turn, _call) from final order by _line, _turn, _call
