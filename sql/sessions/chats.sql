-- chats: every request with the request it continues (chain_parents.sql), as the pointer jumping of
-- ingest/parents.py reads them (text ids; no parent: a root), which builds `roots`.
with final as (
    select cast(s.row_id as varchar) as chat_id, cast(p.parent as varchar) as parent_chat_id
    from stg_requests as s
    left join chain_parents as p on p.row_id = s.row_id
)

select * from final
