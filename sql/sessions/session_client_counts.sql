-- session_client_counts: per bundle client, the sampled sessions it started (its first request's
-- client) and the sampled requests it made (bundle/sessions.py client_sessions' counts).
with final as (
    select client, count(case when turn = 1 then 1 end) as starts, count(*) as requests
    from session_requests
    where client >= 0
    group by client
)

select * from final
