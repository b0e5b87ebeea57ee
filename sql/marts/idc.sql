-- idc: one row per time scale tau (seconds). Index of dispersion of counts: population variance
-- over mean of request counts in the floor(span / tau) whole tau-second bins from the first arrival
-- (bin k holds arrivals in [t0 + k tau, t0 + (k + 1) tau); empty bins count as zero; the partial
-- bin at the end is left out, its short count would inflate the variance). Poisson arrivals give 1;
-- null under two whole bins.
with scales as (
    select unnest(getvariable('idc_scales')) as scale_s
),

bins as (
    select
        s.scale_s,
        cast(floor(r.t_s / s.scale_s) as bigint) as bin_idx,
        count(*) as n
    from stg_requests as r
    cross join scales as s
    where r.t_s < s.scale_s * floor((getvariable('t1_s') - getvariable('t0_s')) / s.scale_s)
    group by all
),

moments as (
    select
        s.scale_s,
        cast(floor((getvariable('t1_s') - getvariable('t0_s')) / s.scale_s) as bigint) as bins,
        coalesce(sum(b.n), 0) as requests,
        coalesce(sum(b.n * b.n), 0) as sum_sq
    from scales as s
    left join bins as b using (scale_s)
    group by all
),

final as (
    select
        scale_s,
        bins,
        requests,
        requests / nullif(bins, 0) as mean_count,
        sum_sq / nullif(bins, 0) - (requests / nullif(bins, 0)) * (requests / nullif(bins, 0)) as var_count,
        case when bins >= 2 then (sum_sq / bins - (requests / bins) * (requests / bins)) / nullif(requests / bins, 0) end as idc,
        1.0 as poisson_idc
    from moments
)

select * from final
