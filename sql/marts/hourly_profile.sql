-- hourly_profile: one row per hour of day (0-23, local time of the trace origin). Requests in that
-- hour over all days, seconds of the trace that fall in it, the mean rate there, and the rate
-- relative to the trace mean (1 = average). Hours the trace never covers have null rates.
with bounds as (
    select getvariable('t0_s') as first_s, getvariable('t1_s') as last_s
),

hours as (
    select unnest(range(cast(floor(first_s / 3600) as bigint), cast(floor(last_s / 3600) as bigint) + 1)) as hour_idx
    from bounds
),

coverage as (
    select
        hours.hour_idx % 24 as hour,
        sum(greatest(least((hours.hour_idx + 1) * 3600.0, bounds.last_s) - greatest(hours.hour_idx * 3600.0, bounds.first_s), 0)) as covered_s
    from hours
    cross join bounds
    group by hour
),

counts as (  -- a bin's hour since the origin: its index over the bins an hour holds (exact integers)
    select cast(floor(bin_idx / (3600 / getvariable('rate_bin_s'))) as bigint) % 24 as hour, cast(sum(requests) as bigint) as requests
    from stg_rate_bins
    group by hour
),

all_hours as (
    select unnest(range(0, 24)) as hour
),

final as (
    select
        all_hours.hour,
        coalesce(counts.requests, 0) as requests,
        coalesce(coverage.covered_s, 0) as covered_s,
        coalesce(counts.requests, 0) / nullif(coverage.covered_s, 0) as rate_rps,
        (coalesce(counts.requests, 0) / nullif(coverage.covered_s, 0))
            / nullif((select cast(sum(requests) as bigint) from stg_rate_bins) / nullif(getvariable('t1_s') - getvariable('t0_s'), 0), 0) as relative_rate
    from all_hours
    left join coverage using (hour)
    left join counts using (hour)
)

select * from final
