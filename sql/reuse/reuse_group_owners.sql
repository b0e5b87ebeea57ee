-- reuse_group_owners: each model group's prefix as runs of blocks with one owner (grain: run):
-- the group `g` (its place in `reuse_model_groups`, registered by reuse/tree_sql.py), the first
-- block of the run and its owner, the first group (in that order) whose prefix holds the same
-- node, so groups that share a deeper part of their prefixes (a system prompt, then a shared
-- document) share those blocks when generated. A group's prefix is the first depth_blocks blocks
-- of its first request (reuse/tree.py group_owners, numpy).
with path as (
    select g.g, r.pos, r.pid
    from reuse_refs as r
    join reuse_model_groups as g on g.example = r.row_id
    where r.m = 1 and r.pos < g.depth_blocks
),

owned as (
    select g, pos, min(g) over (partition by pid) as owner
    from path
),

runs as (
    select g, pos, owner, lag(owner) over (partition by g order by pos) as before
    from owned
),

final as (
    select g, pos, owner
    from runs
    where pos = 0 or owner <> before
)

select * from final
