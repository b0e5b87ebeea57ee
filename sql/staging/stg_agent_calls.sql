-- stg_agent_calls: one row per kept call of an agent trace. A call's chain is the agent that made
-- it: its subagent (parent_id) for a subagent's call, else its session (a call with no session is
-- a chain of its own). Within the chain, by arrival (ties in file order): its step (1 = first),
-- the interval from the previous call's arrival, the idle gap from the previous call's end
-- (arrival + latency_s; null where that latency is unknown) and its kind (`tool`: the previous
-- call was in the same turn, so the agent waited on tools; `think`: a new user turn), the context
-- growth (input - previous input) and whether the call opens a turn of its chain; `prev_tool_s`: the
-- tool time the previous call asked for, where the source records it (Copilot tool_batches).
with calls as (
    select
        file_row_number as row_id,
        arrival_s,
        latency_s,
        session_id,
        model,
        turn,
        coalesce(call_kind, 'unknown') as call_kind,
        parent_id,
        request_id,
        input_tokens,
        output_tokens,
        cached_tokens,
        canceled,
        tool_s,
        tool_calls,
        tool_failures,
        auto_continued,
        case
            when call_kind = 'subagent' and parent_id is not null then 'agent:' || parent_id
            when session_id is not null then 'session:' || session_id
            else 'call:' || file_row_number
        end as chain
    from requests
),

ordered as (
    select
        *,
        row_number() over w as step,
        lag(arrival_s) over w as prev_arrival_s,
        lag(arrival_s + latency_s) over w as prev_end_s,
        lag(turn) over w as prev_turn,
        lag(input_tokens) over w as prev_input_tokens,
        lag(tool_s) over w as prev_tool_s
    from calls
    window w as (partition by chain order by arrival_s, row_id)
),

final as (
    select
        *,
        arrival_s - prev_arrival_s as interval_s,
        arrival_s - prev_end_s as gap_s,
        case
            when prev_arrival_s is null or turn is null or prev_turn is null then null
            when turn <> prev_turn then 'think'
            else 'tool'
        end as gap_kind,
        input_tokens - prev_input_tokens as growth_tokens,
        prev_turn is null or turn is distinct from prev_turn as opens_turn
    from ordered
)

select * from final
