-- agent_counts: one row per (unit, calls): how many turns (unit = 'turn', calls of every agent of
-- the session in that turn) or sessions (unit = 'session') made that many calls, and their share.
with per_turn as (
    select session_id, turn, count(*) as calls
    from stg_agent_calls
    where session_id is not null and turn is not null
    group by session_id, turn
),

per_session as (
    select session_id, count(*) as calls from stg_agent_calls where session_id is not null group by session_id
),

counted as (
    select 'turn' as unit, calls, count(*) as count from per_turn group by calls
    union all
    select 'session' as unit, calls, count(*) as count from per_session group by calls
),

final as (
    select unit, calls, count, count / sum(count) over (partition by unit) as share from counted
)

select * from final
