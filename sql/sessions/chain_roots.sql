-- chain_roots: each request's session inferred from prefix chains (grain: request): the first
-- request of its chain of parents (`roots`, from pointer jumping over `chats`).
with final as (
    select cast(chat_id as bigint) as row_id, cast(root as bigint) as session
    from roots
)

select * from final
