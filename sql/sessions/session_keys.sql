-- session_keys: each request's session (grain: request), keyed by the row number of the
-- session's first request in file order (the table is sorted by arrival): requests sharing a
-- session_id are one session; without session ids, the session inferred from prefix chains
-- (`chain_roots`: empty when not inferred); else a request is a session of its own.
with final as (
    select
        s.row_id,
        case
            when c.session is not null then c.session
            when s.session_id is null then s.row_id
            else min(s.row_id) over (partition by s.session_id)
        end as session
    from stg_requests as s
    left join chain_roots as c on c.row_id = s.row_id
)

select * from final
