-- The agent model's counted distributions: per PMF (`name`), each value `n` and how often it
-- occurs: user turns per session and main calls per turn (main calls), subagents per spawning
-- turn (agents/fanout.sql) and calls per subagent. Filled in by Python: the main-call and
-- subagent-call conditions, the fan-out query.
with counted as (
    select 'turns' as name, count(distinct turn) as n from stg_agent_calls where {main} group by session_id
    union all
    select 'calls_per_turn', count(*) from stg_agent_calls where {main} group by session_id, turn
    union all
    select 'fanout', f.n from ({fanout}
    ) as f
    union all
    select 'calls', count(*) from stg_agent_calls where {sub} group by parent_id
)

select name, n, count(*) as k from counted where n is not null group by name, n order by name, n
