-- reuse_group_head: the most popular shared-prefix groups (grain: group): by sessions, then
-- requests, then the row of the first request (a total order, the same on either engine), with
-- the share of the trace's block references made under each. Kept: the first `reuse_group_head`
-- (the findings' table), and the first `reuse_group_model` of those with a first turn (the
-- bundle's prefix model); each an order by and limit (a top-k per task, then one merge), their
-- union in no order (reuse/tree_sql.py sorts it).
with total as (
    select count(*) as refs
    from reuse_refs
    where m = 1
),

top as (
    select *
    from reuse_groups
    order by sessions desc, requests desc, example
    limit getvariable('reuse_group_head')
),

top_first as (
    select *
    from reuse_groups
    where first_turns > 0
    order by sessions desc, requests desc, example
    limit getvariable('reuse_group_model')
),

kept as (
    select * from top
    union
    select * from top_first
),

final as (
    select
        k.example,
        k.depth_blocks,
        k.sessions,
        k.first_turns,
        k.requests,
        k.refs,
        cast(k.refs as double) / greatest(t.refs, 1) as reference_share
    from kept as k
    cross join total as t
)

select * from final
