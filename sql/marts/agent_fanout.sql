-- agent_fanout: one row per number of subagents spawned in one turn of a session: the turns that
-- spawned that many (a subagent is the parent_id its calls share).
with per_turn as (
    select session_id, turn, count(distinct parent_id) as subagents
    from stg_agent_calls
    where call_kind = 'subagent' and parent_id is not null
    group by session_id, turn
),

final as (
    select subagents, count(*) as turns, count(*) / sum(count(*)) over () as share from per_turn group by subagents
)

select * from final
