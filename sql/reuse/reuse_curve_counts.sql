-- reuse_curve_counts: the LRU prefix-cache curve's counts per re-blocking factor m and capacity
-- (grain: m, capacity: the powers of two in reuse_powers): the sampled references whose running
-- distance is below the capacity, beside the factor's sampled references and the distinct prefix
-- ids among them.
with by_running as (
    select m, running, count(*) as refs
    from reuse_distances
    group by m, running
),

totals as (
    select m, count(*) as sampled, count(distinct pid) as sampled_distinct
    from reuse_sample
    group by m
),

powers as (
    select unnest(getvariable('reuse_powers')) as capacity
),

final as (
    select
        r.m,
        p.capacity,
        sum(case when r.running < p.capacity then r.refs else 0 end) as hits,
        t.sampled,
        t.sampled_distinct
    from by_running as r
    cross join powers as p
    join totals as t on t.m = r.m
    group by r.m, p.capacity, t.sampled, t.sampled_distinct
)

select * from final
