-- session_start_head: the first `session_head_rows` arrivals of the sessions' first requests
-- (grain: session start), for the arrival model fitted on the starts.
with final as (
    select r.row_id, r.arrival_s
    from stg_requests as r
    join session_keys as k on k.row_id = r.row_id
    where k.session = k.row_id
    order by r.arrival_s, r.row_id
    limit getvariable('session_head_rows')
)

select * from final
