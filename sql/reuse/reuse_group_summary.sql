-- reuse_group_summary: the shared-prefix groups at large (grain: one row): their number, their
-- prefixes' length in tokens (mean, median, p90: depth times `reuse_block_size`), the requests
-- under one, and the sessions of the trace.
with groups as (
    select
        count(*) as groups,
        avg(depth_blocks * getvariable('reuse_block_size')) as depth_tokens_mean,
        quantile_cont(depth_blocks * getvariable('reuse_block_size'), 0.5) as depth_tokens_p50,
        quantile_cont(depth_blocks * getvariable('reuse_block_size'), 0.9) as depth_tokens_p90,
        sum(requests) as shared_requests
    from reuse_groups
),

sessions as (
    select count(*) as sessions
    from session_keys
    where session = row_id
),

final as (
    select g.*, s.sessions
    from groups as g
    cross join sessions as s
)

select * from final
