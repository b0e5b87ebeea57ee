-- Per nesting level of subagents: the chains at that level and the distinct subagents spawning
-- them. A subagent names its spawning call (parent_id = that call's request_id, `#k` for its k-th
-- subagent); its level is 1 when that call is no subagent's call, else its spawner's + 1 (walked up
-- to 32 levels). Filled in by Python: the subagent-call condition (subagent_call.sql).
with recursive chains as (
    select distinct parent_id as chain, regexp_replace(parent_id, '#[0-9]+$', '') as spawner
    from stg_agent_calls where {sub}
),
calls as (select request_id, parent_id as chain from stg_agent_calls where {sub}),
edges as (select c.chain, k.chain as up from chains c join calls k on k.request_id = c.spawner),
walk(chain, up, level) as (
    select chain, chain, 1 from chains
    union all
    select w.chain, e.up, w.level + 1 from walk w join edges e on e.chain = w.up where w.level < 32
),
level as (select chain, max(level) as level from walk group by chain)
select l.level, count(*), count(distinct e.up) from level l
left join edges e on e.chain = l.chain group by l.level order by l.level
