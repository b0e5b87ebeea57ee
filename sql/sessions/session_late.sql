-- session_late: the sessions that start before and after the burn time (`session_burn` s past
-- `session_origin`), for the session window's `under_way` (bundle/under_way.py).
with final as (
    select
        count(case when arrival_s - getvariable('session_origin') >= getvariable('session_burn') then 1 end) as late,
        count(case when arrival_s - getvariable('session_origin') < getvariable('session_burn') then 1 end) as early
    from session_requests
    where turn = 1
)

select * from final
