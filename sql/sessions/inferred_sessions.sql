-- inferred_sessions: each request's session inferred from prefix chains (grain: request), as text
-- (the sessions stage's `inferred_sessions`, which DuckDB fills from numpy's chains): the row of
-- the chain's first request (session_keys.sql, after chain_roots).
with final as (
    select row_id, cast(session as varchar) as session_key
    from session_keys
)

select * from final
