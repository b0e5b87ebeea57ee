-- reuse_distance_sample: up to reuse_sample_size finite reuse distances at the source's block size
-- (grain: reference), the first in an order scrambled by a seeded multiplicative hash of the
-- reference's index (0x61C88647, mod 2^32): a sample spread evenly over the trace.
with final as (
    select distance
    from reuse_distances
    where m = 1 and distance is not null
    order by (((((i + getvariable('reuse_seed')) % 4294967296) + 4294967296) % 4294967296) * 1640531527) % 4294967296, i
    limit getvariable('reuse_sample_size')
)

select * from final
