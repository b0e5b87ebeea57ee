-- Gaps between consecutive session starts of one model (a session's model: that of its first main
-- call, by arrival then file order), as `v` with the row of the later start. Filled in by Python:
-- the main-call condition.
with s as (
    select model, arrival_s as t, row_id from (
        select model, arrival_s, row_id,
               row_number() over (partition by session_id order by arrival_s, row_id) as r
        from stg_agent_calls where {main})
    where r = 1
)
select t - lag(t) over (partition by model order by t, row_id) as v, row_id from s
