-- fit_sums: the first pass's sums at three levels (grain: level, client, window_idx): per
-- (client, window) of the inter-arrivals inside the window (level 1), per client of all its
-- inter-arrivals across windows (level 2, window_idx null) and per window of every request as one
-- client (level 3, client null). Each: requests, failures, and the count, sum, sum of logs and
-- squared deviations from their mean (m2) of the inter-arrivals; on a coarse clock (fit_clock_s > 0:
-- the source's timestamps written in whole ticks) also the sum over ticks of the group's requests
-- in the tick, squared, for the CV under the clock: requests counted per tick, then their squares
-- summed, two aggregates (a window over the rows per tick shuffled every row three times on Spark).
with levels as (
    select
        l.level,
        case when l.level < 3 then r.client end as client,
        case when l.level <> 2 then r.window_idx end as window_idx,
        case l.level when 1 then r.x_window when 2 then r.x else r.x_all_window end as gap,
        r.failed,
        case
            when getvariable('fit_clock_s') > 0
                then cast(floor((r.arrival_s - getvariable('fit_g0')) / getvariable('fit_clock_s')) as bigint)
            else 0
        end as tick
    from fit_rows as r
    cross join (select 1 as level union all select 2 union all select 3) as l
),

per_tick as (
    select level, client, window_idx, count(*) as tick_n
    from levels
    group by level, client, window_idx, tick
),

tick_sums as (
    select level, client, window_idx, sum(tick_n * tick_n) as sum_tick_n2
    from per_tick
    group by level, client, window_idx
),

sums as (
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
),

final as (
    select
        s.*,
        case when getvariable('fit_clock_s') > 0 then cast(t.sum_tick_n2 as double) else 0.0 end as sum_tick_n2
    from sums as s
    inner join tick_sums as t
        on t.level = s.level
        and t.client is not distinct from s.client
        and t.window_idx is not distinct from s.window_idx
)

select * from final
