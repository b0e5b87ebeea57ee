-- session_shared: the tokens of each request's shared prefix (grain: request with one): its blocks
-- whose prefix id two or more sessions (session_keys) reference (reuse/tree.py shared_prefixes:
-- a leading run, as a block's ancestors are referenced by the same requests), times the block size.
with refs as (
    select row_id, pid
    from reuse_refs
    where m = 1
),

per_pid as (
    select f.pid, count(distinct k.session) as sessions
    from refs as f
    join session_keys as k on k.row_id = f.row_id
    group by f.pid
),

final as (
    select f.row_id, count(*) * getvariable('reuse_block_size') as shared_tokens
    from refs as f
    join per_pid as p on p.pid = f.pid
    where p.sessions >= 2
    group by f.row_id
)

select * from final
