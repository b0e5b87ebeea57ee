-- reuse_group_head: the most popular shared-prefix groups (grain: group): by sessions, then
-- requests, then the row of the first request (a total order, the same on either engine), with
-- the share of the trace's block references made under each. Kept: the first `reuse_group_head`
-- (the findings' table), and the first `reuse_group_model` of those with a first turn (the
-- bundle's prefix model); `rank` is the place in the order.
with total as (
    select count(*) as refs
    from reuse_refs
    where m = 1
),

ranked as (
    select
        g.example,
        g.depth_blocks,
        g.sessions,
        g.first_turns,
        g.requests,
        g.refs,
        cast(g.refs as double) / greatest(t.refs, 1) as reference_share,
        row_number() over (order by g.sessions desc, g.requests desc, g.example) as rank,
        row_number() over (partition by g.first_turns > 0
                           order by g.sessions desc, g.requests desc, g.example) as model_rank
    from reuse_groups as g
    cross join total as t
),

final as (
    select *
    from ranked
    where rank <= getvariable('reuse_group_head')
        or (first_turns > 0 and model_rank <= getvariable('reuse_group_model'))
)

select * from final
