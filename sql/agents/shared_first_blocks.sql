-- The share of sessions whose first main call begins with a block that also begins another
-- session's first main call (a prefix shared across sessions, e.g. a common system prompt); null
-- without sessions. Over `requests` (it needs hash_ids).
with f as (
    select hash_ids[1] as b from (
        select hash_ids, row_number() over (partition by session_id order by arrival_s, file_row_number) as r
        from requests
        where session_id is not null and coalesce(call_kind, 'main') <> 'subagent')
    where r = 1
)
select coalesce(sum(n) filter (where b is not null and n > 1), 0) / nullif(sum(n), 0)
from (select b, count(*) as n from f group by b)
