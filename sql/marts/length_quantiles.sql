-- length_quantiles: one row per length field (input, output, reason) and level of a dimension:
-- `all`, each `model`, each `service`, each of the `max_groups_detail` largest groups. Count,
-- moments (population std) and quantiles by linear interpolation over all kept rows, computed
-- from the value counts of stg_length_counts: for quantile q of n rows, h = (n - 1) q, and the
-- result interpolates between the values at 0-based positions floor(h) and ceil(h) (as
-- quantile_cont and numpy's default do), so it is exact.
with levels as (
    select
        field,
        case
            when grouping(model) = 0 then 'model'
            when grouping(service) = 0 then 'service'
            when grouping(group_key) = 0 then 'group'
            else 'all'
        end as dimension,
        case
            when grouping(model) = 0 then model
            when grouping(service) = 0 then service
            when grouping(group_key) = 0 then group_key
            else 'all'
        end as level,
        tokens,
        cast(sum(requests) as bigint) as requests
    from stg_length_counts
    group by grouping sets ((field, tokens), (field, model, tokens), (field, service, tokens), (field, group_key, tokens))
),

cumulative as (
    select
        field,
        dimension,
        level,
        tokens,
        requests,
        cast(sum(requests) over (partition by field, dimension, level order by tokens) as bigint) as below_or_at,
        cast(sum(requests) over (partition by field, dimension, level) as bigint) as n,
        sum(requests * tokens) over (partition by field, dimension, level)
            / sum(requests) over (partition by field, dimension, level) as mean
    from levels
    where level is not null
),

moments as (
    select
        field,
        dimension,
        level,
        cast(any_value(n) as bigint) as requests,
        any_value(mean) as mean,
        sqrt(sum(requests * (tokens - mean) * (tokens - mean)) / any_value(n)) as std,
        min(tokens) as min,
        max(tokens) as max
    from cumulative
    group by field, dimension, level
),

-- Each quantile's position h per level (not per row), its floor and ceiling as integers: the
-- rows then compare integers with integers.
bounds as (
    select m.field, m.dimension, m.level, q.q, (m.requests - 1) * q.q as h
    from moments as m
    cross join (select unnest([0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99]) as q) as q
),

positions as (
    select field, dimension, level, q, h, cast(floor(h) as bigint) as h_floor, cast(ceil(h) as bigint) as h_ceil
    from bounds
),

quantiles as (
    select
        c.field,
        c.dimension,
        c.level,
        p.q,
        min(c.tokens) filter (where c.below_or_at > p.h_floor) as lo,
        min(c.tokens) filter (where c.below_or_at > p.h_ceil) as hi,
        any_value(p.h) - floor(any_value(p.h)) as frac
    from cumulative as c
    join positions as p on p.field = c.field and p.dimension = c.dimension and p.level = c.level
    group by c.field, c.dimension, c.level, p.q
),

wide as (
    select
        field,
        dimension,
        level,
        max(lo + frac * (hi - lo)) filter (where q = 0.1) as p10,
        max(lo + frac * (hi - lo)) filter (where q = 0.25) as p25,
        max(lo + frac * (hi - lo)) filter (where q = 0.5) as p50,
        max(lo + frac * (hi - lo)) filter (where q = 0.75) as p75,
        max(lo + frac * (hi - lo)) filter (where q = 0.9) as p90,
        max(lo + frac * (hi - lo)) filter (where q = 0.95) as p95,
        max(lo + frac * (hi - lo)) filter (where q = 0.99) as p99
    from quantiles
    group by field, dimension, level
),

final as (
    select
        m.field,
        m.dimension,
        m.level,
        m.requests,
        m.mean,
        m.std,
        m.std / nullif(m.mean, 0) as cv,
        m.min,
        w.p10,
        w.p25,
        w.p50,
        w.p75,
        w.p90,
        w.p95,
        w.p99,
        m.max
    from moments as m
    join wide as w using (field, dimension, level)
)

select * from final
