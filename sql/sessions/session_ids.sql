-- session_ids: how many requests carry a session id (one row).
with final as (
    select count(session_id) as n from stg_requests
)

select * from final
