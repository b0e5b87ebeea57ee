-- reuse_groups: the shared-prefix groups (grain: group, named by `example`, the row of its first
-- request): the depth of the prefix in blocks, the sessions with a request under it, the sessions
-- whose first turn is under it (its popularity), its requests and their block references.
with blocks as (
    select row_id, count(*) as refs
    from reuse_refs
    where m = 1
    group by row_id
),

members as (
    select
        s.example,
        s.shared_blocks,
        k.session,
        case when k.session = s.row_id then 1 else 0 end as first_turn,
        b.refs
    from reuse_shared as s
    join session_keys as k on k.row_id = s.row_id
    join blocks as b on b.row_id = s.row_id
),

final as (
    select
        example,
        min(shared_blocks) as depth_blocks,
        count(distinct session) as sessions,
        sum(first_turn) as first_turns,
        count(*) as requests,
        sum(refs) as refs
    from members
    group by example
)

select * from final
