-- reuse_shared: each request's shared prefix (grain: request with one): its blocks whose prefix id
-- two or more sessions (session_keys) reference (a leading run: a block's ancestors are referenced
-- by the same requests), and its group, the prefix id of the deepest of them, named by the row of
-- the group's first request (`example`). Each request is under one group at most, so `example`
-- names a group on either engine, where a prefix id is an engine's hash (reuse/tree.py
-- shared_prefixes, numpy).
with refs as (
    select row_id, pos, pid
    from reuse_refs
    where m = 1
),

per_pid as (
    select f.pid, count(distinct k.session) as sessions
    from refs as f
    join session_keys as k on k.row_id = f.row_id
    group by f.pid
),

shared as (
    select f.row_id, count(*) as shared_blocks, arg_max(f.pid, f.pos) as group_pid
    from refs as f
    join per_pid as p on p.pid = f.pid
    where p.sessions >= 2
    group by f.row_id
),

final as (
    select row_id, shared_blocks, min(row_id) over (partition by group_pid) as example
    from shared
)

select * from final
