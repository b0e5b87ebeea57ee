-- rate_series: one row per `rate_bin_s` bin of absolute time (bin k covers [k b, (k + 1) b) seconds
-- since the origin) from the bin of the first arrival to that of the last, empty bins included.
-- covered_s is the part of the bin inside [first arrival, last arrival]; rate_rps = requests / bin.
-- Counted from stg_rate_bins.
with bounds as (
    select getvariable('t0_s') as first_s, getvariable('t1_s') as last_s, getvariable('rate_bin_s') as b
),

bins as (
    select unnest(range(cast(floor(first_s / b) as bigint), cast(floor(last_s / b) as bigint) + 1)) as bin_idx
    from bounds
),

counts as (
    select bin_idx, requests from stg_rate_bins
),

final as (
    select
        bins.bin_idx,
        bins.bin_idx * bounds.b as bin_start_s,
        coalesce(counts.requests, 0) as requests,
        coalesce(counts.requests, 0) / bounds.b as rate_rps,
        least((bins.bin_idx + 1) * bounds.b, bounds.last_s) - greatest(bins.bin_idx * bounds.b, bounds.first_s) as covered_s
    from bins
    cross join bounds
    left join counts using (bin_idx)
)

select * from final
