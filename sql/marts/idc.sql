-- idc: one row per time scale tau (seconds). Index of dispersion of counts: population variance
-- over mean of request counts in the floor(span / tau) whole tau-second bins from the first arrival
-- (bin k holds arrivals in [t0 + k tau, t0 + (k + 1) tau); empty bins count as zero; the partial
-- bin at the end is left out, its short count would inflate the variance). Poisson arrivals give 1;
-- null under two whole bins.
-- One scan counts the requests per bin of the finest scale; a scale that is a whole multiple m of
-- it adds up m consecutive fine bins (bin floor(k / m): the same bin as floor(t / tau), as
-- floor(floor(t / s) / m) = floor(t / (s m)), except for an arrival within a rounding unit of a
-- bin edge, which it places exactly); any other scale counts the rows itself.
with scales as (
    select unnest(getvariable('idc_scales')) as scale_s
),

finest as (
    select min(scale_s) as fine_s from scales
),

per_scale as (
    select
        s.scale_s,
        cast(floor((getvariable('t1_s') - getvariable('t0_s')) / s.scale_s) as bigint) as bins,
        case when s.scale_s / f.fine_s = floor(s.scale_s / f.fine_s) then cast(s.scale_s / f.fine_s as bigint) end as m
    from scales as s
    cross join finest as f
),

fine_bins as (
    select cast(floor(r.t_s / f.fine_s) as bigint) as fine_idx, count(*) as n
    from stg_requests as r
    cross join finest as f
    group by all
),

rolled as (
    select p.scale_s, cast(floor(b.fine_idx / p.m) as bigint) as bin_idx, sum(b.n) as n
    from fine_bins as b
    cross join per_scale as p
    where p.m is not null and b.fine_idx < p.m * p.bins
    group by all
),

counted as (
    select s.scale_s, cast(floor(r.t_s / s.scale_s) as bigint) as bin_idx, count(*) as n
    from stg_requests as r
    cross join (select scale_s, bins from per_scale where m is null) as s
    where r.t_s < s.scale_s * s.bins
    group by all
),

bins as (
    select scale_s, bin_idx, n from rolled
    union all
    select scale_s, bin_idx, n from counted
),

moments as (
    select
        p.scale_s,
        p.bins,
        coalesce(sum(b.n), 0) as requests,
        coalesce(sum(b.n * b.n), 0) as sum_sq
    from per_scale as p
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
