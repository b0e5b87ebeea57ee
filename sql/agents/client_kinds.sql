-- Which bundle client makes a session's calls, by the client that started it (that of its first
-- main call): its later main calls one by one, and its subagents by their first call (a subagent
-- keeps one model). Rows (kind, session's client, call's client, count). Filled in by Python: the
-- main-call and subagent-call conditions.
with c as (select s.*, k.client from stg_agent_calls s join call_clients k using (row_id)),
firsts as (
    select session_id, client as session_client from (
        select session_id, client, row_number() over (partition by session_id order by arrival_s, row_id) as r
        from c where {main})
    where r = 1
)
select case when {sub} then 'subagent' else 'main' end as kind, f.session_client, c.client, count(*) as n
from c join firsts f using (session_id)
where ({main} and c.step > 1) or ({sub} and c.step = 1)
group by all
order by 1, 2, 3
