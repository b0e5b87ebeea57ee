-- session_shared: the tokens of each request's shared prefix (grain: request with one): its blocks
-- whose prefix id two or more sessions reference (reuse_shared.sql), times the block size.
with final as (
    select row_id, shared_blocks * getvariable('reuse_block_size') as shared_tokens
    from reuse_shared
)

select * from final
