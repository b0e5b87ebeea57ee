-- fit_sums: the first pass's sums at three levels (grain: level, client, window_idx): per
-- (client, window) of the inter-arrivals inside the window (level 1), per client of all its
-- inter-arrivals across windows (level 2, window_idx null) and per window of every request as one
-- client (level 3, client null). Each: requests, failures, and the count, sum, sum of logs and
-- squared deviations from their mean (m2) of the inter-arrivals.
with levels as (
    select
        l.level,
        case when l.level < 3 then r.client end as client,
        case when l.level <> 2 then r.window_idx end as window_idx,
        case l.level when 1 then r.x_window when 2 then r.x else r.x_all_window end as gap,
        r.failed
    from fit_rows as r
    cross join (select 1 as level union all select 2 union all select 3) as l
),

final as (
    select
        level,
        client,
        window_idx,
        count(*) as requests,
        count(gap) as n_iat,
        coalesce(sum(gap), 0.0) as sum_x,
        coalesce(sum(ln(gap)), 0.0) as sum_log,
        coalesce(var_pop(gap) * count(gap), 0.0) as m2,
        sum(case when failed then 1 else 0 end) as failed
    from levels
    group by level, client, window_idx
)

select * from final
