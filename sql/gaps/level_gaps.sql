-- level_gaps: one row per level of the group key, the model and the service: its requests and the
-- gaps between its own consecutive arrivals (count, mean, population std). Partitioned by level
-- and window as gap_rows is: a level's first request in a window takes the level's last arrival
-- in its previous non-empty window.
with levels as (
    select 'group' as dimension, group_key as level, row_id, arrival_s, window_idx from stg_requests
    union all
    select 'model' as dimension, model as level, row_id, arrival_s, window_idx from stg_requests
    union all
    select 'service' as dimension, service as level, row_id, arrival_s, window_idx from stg_requests
),

lagged as (
    select
        *,
        lag(arrival_s) over (partition by dimension, level, window_idx order by arrival_s, row_id) as prev_s
    from levels
),

ends as (
    select dimension, level, window_idx, max(arrival_s) as last_s
    from levels
    group by dimension, level, window_idx
),

before as (
    select
        dimension,
        level,
        window_idx,
        lag(last_s) over (partition by dimension, level order by window_idx) as before_s
    from ends
),

gaps as (
    select l.dimension, l.level, l.arrival_s - coalesce(l.prev_s, b.before_s) as gap_s
    from lagged as l
    inner join before as b on l.dimension = b.dimension and l.level = b.level and l.window_idx = b.window_idx
),

final as (
    select
        dimension,
        level,
        count(*) as requests,
        count(gap_s) as gaps,
        avg(gap_s) as iat_mean_s,
        stddev_pop(gap_s) as iat_std_s
    from gaps
    group by dimension, level
)

select * from final
