-- reuse_tree: the shape of the prefix tree (grain: one row). Its nodes are the prefix ids of
-- reuse_refs at the source's block size, a request a path from a root (its first block) down;
-- an edge joins each block to the one before it in its request. Nodes, roots, blocks per request
-- (depth: median, p90, max), and the distinct children of each inner node (fan-out: mean, p90,
-- max, and the share of inner nodes with two or more: where prefixes branch). As reuse/tree.py
-- tree_shape (numpy); quantiles interpolate linearly.
with refs as (
    select row_id, pos, pid
    from reuse_refs
    where m = 1
),

steps as (
    select pid, lag(pid) over (partition by row_id order by pos) as parent
    from refs
),

edges as (
    select distinct parent, pid as child
    from steps
    where parent is not null
),

fanout as (
    select parent, count(*) as children
    from edges
    group by parent
),

depth as (
    select row_id, count(*) as blocks
    from refs
    group by row_id
),

nodes as (
    select count(distinct pid) as nodes, count(distinct case when pos = 0 then pid end) as roots
    from refs
),

depths as (
    select
        quantile_cont(blocks, 0.5) as depth_p50_blocks,
        quantile_cont(blocks, 0.9) as depth_p90_blocks,
        max(blocks) as depth_max_blocks
    from depth
),

fanouts as (
    select
        count(*) as inner_nodes,
        avg(children) as fanout_mean,
        quantile_cont(children, 0.9) as fanout_p90,
        max(children) as fanout_max,
        avg(case when children > 1 then 1 else 0 end) as branching_share
    from fanout
),

final as (
    select n.nodes, n.roots, d.depth_p50_blocks, d.depth_p90_blocks, d.depth_max_blocks, f.inner_nodes,
        f.fanout_mean, f.fanout_p90, f.fanout_max, f.branching_share
    from nodes as n
    cross join depths as d
    cross join fanouts as f
)

select * from final
