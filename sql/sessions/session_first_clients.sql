-- session_first_clients: each session's first request and its bundle client (grain: session;
-- `bundle_clients` and `session_client_default` as in session_requests.sql): a session is its
-- first request's client's (the prefix model's per-client groups).
with final as (
    select k.row_id, coalesce(b.idx, getvariable('session_client_default')) as client
    from session_keys as k
    join stg_requests as r on r.row_id = k.row_id
    left join bundle_clients as b on b.name = r.group_key
    where k.session = k.row_id
)

select * from final
