-- reuse_distances: the LRU stack distance of every sampled reference (grain: m, i): the distinct
-- prefix ids referenced since the previous reference to the same one (Mattson et al., 1970), an
-- LRU cache of C blocks hitting exactly the references at distance < C. With p = prev (x = p + 1,
-- 0 for a first reference), the distance is i - p - 1 minus the earlier references j < i with
-- prev[j] > prev[i]. That count is summed over the bits b where x is 0 and an earlier x with the
-- same higher bits has a 1 (there the two first differ, the earlier one greater): one running
-- sum per bit (reuse_bits: 0 .. the bit length of the largest index). Distances are scaled by
-- 1 / rate under SHARDS (`distance`, null for a first reference); `running` is the largest
-- distance over the request's sampled blocks so far (null once a first reference came): a block is
-- a prefix hit at capacity C iff running < C.
with bits as (
    select unnest(getvariable('reuse_bits')) as b
),

per_bit as (
    select
        s.m,
        s.i,
        ((coalesce(s.prev, -1) + 1) >> k.b) & 1 as bit,
        sum(((coalesce(s.prev, -1) + 1) >> k.b) & 1) over (
            partition by s.m, k.b, (coalesce(s.prev, -1) + 1) >> (k.b + 1)
            order by s.i rows between unbounded preceding and 1 preceding) as ones_before
    from reuse_sample as s
    cross join bits as k
),

inversions as (
    select m, i, sum(case when bit = 0 then coalesce(ones_before, 0) else 0 end) as earlier_greater
    from per_bit
    group by m, i
),

distances as (
    select
        s.m,
        s.row_id,
        s.pos,
        s.i,
        case
            when s.prev is null then null
            when s.rate < 1 then cast(floor((s.i - s.prev - 1 - v.earlier_greater) / s.rate) as bigint)
            else s.i - s.prev - 1 - v.earlier_greater
        end as distance
    from reuse_sample as s
    join inversions as v on v.m = s.m and v.i = s.i
),

final as (
    select
        *,
        nullif(max(coalesce(distance, 4611686018427387903)) over (
            partition by m, row_id order by pos rows between unbounded preceding and current row),
            4611686018427387903) as running
    from distances
)

select * from final
