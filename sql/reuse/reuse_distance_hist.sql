-- reuse_distance_hist: reuse distances at the source's block size in log2 bins (grain: bin k:
-- [2^(k-1), 2^k), bin 0 holding distance 0): a distance's bin is its bit length, the powers of two
-- (reuse_powers) at or below it.
with by_distance as (
    select distance, count(*) as refs
    from reuse_distances
    where m = 1 and distance is not null
    group by distance
),

powers as (
    select unnest(getvariable('reuse_powers')) as p
),

binned as (
    select d.distance, d.refs, sum(case when p.p <= d.distance then 1 else 0 end) as k
    from by_distance as d
    cross join powers as p
    group by d.distance, d.refs
),

final as (
    select k, sum(refs) as refs
    from binned
    group by k
)

select * from final
