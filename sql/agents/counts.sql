-- The agent model's counts over stg_agent_calls, in one pass: calls, main calls and their
-- sessions, the recorded gaps (call ends), cached tokens and cancellations, the subagents and the
-- main turns (those spawning any too); whether the calls are an agent trace's: they name their
-- kind, or a user turn holds several main calls (Bailian's turns are one request each). Filled in
-- by Python: the main-call and subagent-call conditions.
with totals as (
    select
        count(*) as calls,
        count(*) filter (where {main}) as mains,
        count(distinct case when {main} then session_id end) as sessions,
        count(gap_s) as gaps,
        count(cached_tokens) as cached,
        count(canceled) as known_canceled,
        count(*) filter (where canceled) as canceled,
        count(distinct case when {sub} then parent_id end) as subagents,
        count(call_kind) filter (where call_kind <> 'unknown') as named_kinds
    from stg_agent_calls
),

main_turns as (
    select session_id, turn, count(*) as n from stg_agent_calls where {main} group by session_id, turn
),

turns as (
    select count(*) as main_turns, coalesce(max(n), 0) as most_turn_calls from main_turns
),

spawning as (
    select count(*) as spawning_turns
    from (select distinct session_id, turn from stg_agent_calls where {sub}) as t
)

select * from totals cross join turns cross join spawning
