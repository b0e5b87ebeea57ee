-- GitHub Copilot coding-agent traces (ingest/agentic/copilot.py): one row per LLM call of the
-- sessions in `records`, every field as text, in the source's order. Filled in by Python: the
-- typed sessions, the clipped turn and call records, the latency and tool-time expressions.
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
final as (
    select _line, turn as _turn, _call,
           case when _problem is null then {call_record} else _record end as _record,
           _problem,
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
           {tool_s} as tool_s,
           case when _call is not null then 'turns[' || (turn - 1) || '].llm_calls[' || (_call - 1) || ']'
                when turn is not null then 'turns[' || (turn - 1) || ']' end as _item
    -- to_json on every call: DuckDB holds the memory of a JSON function run only under a CASE
    from (select *, cast(to_json(c) as varchar) as call_text from calls)
)
-- in the source's order (unnest runs in parallel): ties in arrival keep it
select * exclude (_turn, _call) from final order by _line, _turn, _call
