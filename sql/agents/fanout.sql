-- Per user turn that spawns subagents: how many (`n`). Filled in by Python: the subagent-call
-- condition (subagent_call.sql).
select count(distinct parent_id) as n from stg_agent_calls where {sub} group by session_id, turn
