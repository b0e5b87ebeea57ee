-- session_keys: each request's session (grain: request), keyed by the row number of the
-- session's first request in file order (the table is sorted by arrival): requests sharing a
-- session_id are one session; a request without one is a session of its own. `shared_tokens` is
-- 0 here; where the prefix tree was built, bundle/session_sql.py registers this table from the
-- tree's arrays instead (sessions inferred from prefix chains, tokens under a shared prefix).
with final as (
    select
        row_id,
        case
            when session_id is null then row_id
            else min(row_id) over (partition by session_id)
        end as session,
        cast(0 as bigint) as shared_tokens
    from stg_requests
)

select * from final
