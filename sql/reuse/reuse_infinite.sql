-- reuse_infinite: the infinite prefix cache per re-blocking factor m (grain: m): block references,
-- the leading ones already seen (its hits) and the distinct prefix ids.
with distinct_blocks as (
    select m, count(distinct pid) as distinct_blocks
    from reuse_refs
    group by m
),

hits as (
    select m, sum(refs) as refs, sum(leading_hits) as hits
    from reuse_requests
    group by m
),

final as (
    select h.m, h.refs, h.hits, d.distinct_blocks
    from hits as h
    join distinct_blocks as d on d.m = h.m
)

select * from final
