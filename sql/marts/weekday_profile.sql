-- weekday_profile: one row per day of week (0 = Monday .. 6 = Sunday when the origin date is
-- known, `origin_weekday` >= 0; otherwise day index since the origin modulo 7). Requests, seconds
-- of the trace on that weekday, mean rate and rate relative to the trace mean.
with bounds as (
    select getvariable('t0_s') as first_s, getvariable('t1_s') as last_s, greatest(getvariable('origin_weekday'), 0) as wd0
),

days as (
    select unnest(range(cast(floor(first_s / 86400) as bigint), cast(floor(last_s / 86400) as bigint) + 1)) as day_idx
    from bounds
),

coverage as (
    select
        (days.day_idx + bounds.wd0) % 7 as weekday,
        sum(greatest(least((days.day_idx + 1) * 86400.0, bounds.last_s) - greatest(days.day_idx * 86400.0, bounds.first_s), 0)) as covered_s
    from days
    cross join bounds
    group by weekday
),

counts as (  -- a bin's day since the origin: its index over the bins a day holds (exact integers)
    select (cast(floor(bin_idx / (86400 / getvariable('rate_bin_s'))) as bigint) + (select wd0 from bounds)) % 7 as weekday,
           cast(sum(requests) as bigint) as requests
    from stg_rate_bins
    group by weekday
),

all_days as (
    select unnest(range(0, 7)) as weekday
),

final as (
    select
        all_days.weekday,
        coalesce(counts.requests, 0) as requests,
        coalesce(coverage.covered_s, 0) as covered_s,
        coalesce(counts.requests, 0) / nullif(coverage.covered_s, 0) as rate_rps,
        (coalesce(counts.requests, 0) / nullif(coverage.covered_s, 0))
            / nullif((select cast(sum(requests) as bigint) from stg_rate_bins) / nullif(getvariable('t1_s') - getvariable('t0_s'), 0), 0) as relative_rate
    from all_days
    left join coverage using (weekday)
    left join counts using (weekday)
)

select * from final
