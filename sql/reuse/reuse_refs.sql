-- reuse_refs: every KV-cache block reference at each re-blocking factor m (grain: m, request, block
-- position), keyed by its *prefix id*: a hash of every block id from the start of its request up
-- to it, so equal prefix ids mean equal content from the first token on (what vLLM's and SGLang's
-- prefix caches key on, whether or not the source's ids already chain their prefix). Each
-- (block id, position) goes through MurmurHash3's 32-bit finalizer in two streams of different
-- keys, every product below 2^63 (multipliers below 2^31; the finalizer's products mod 2^32 taken
-- in 16-bit halves, as in stg_requests.sql), so both engines compute the same bits; the prefix id
-- packs the running sums of the two streams over the request's blocks (mod 2^32 and 2^31) into 63
-- bits. A block of m source blocks (m from reuse_factors) is the group's last source block, its
-- position the group's index: a partial last group keeps the prefix id of its last block. Every
-- bit operation is parenthesized.
with exploded as (
    select
        file_row_number as row_id,
        array_length(hash_ids) as n_blocks,
        unnest(hash_ids) as block_id,
        generate_subscripts(hash_ids, 1) as position
    from requests
),

keyed as (
    select
        row_id,
        n_blocks,
        position - 1 as pos,
        (xor(block_id & 4294967295, 2246822507)
         + ((((block_id >> 32) & 4294967295) * 1640531527) & 4294967295)
         + (((position - 1) * 668265263) & 4294967295)) & 4294967295 as h_a,
        (xor((block_id >> 32) & 4294967295, 1013904242)
         + (((block_id & 4294967295) * 2146121005) & 4294967295)
         + (((position - 1) * 374761393) & 4294967295)) & 4294967295 as h_b
    from exploded
),

shifted_16 as (
    select *, xor(h_a, h_a >> 16) as a_a, xor(h_b, h_b >> 16) as a_b
    from keyed
),

times_85ebca6b as (
    select
        *,
        ((((a_a * 34283) & 65535) << 16) + a_a * 51819) & 4294967295 as b_a,
        ((((a_b * 34283) & 65535) << 16) + a_b * 51819) & 4294967295 as b_b
    from shifted_16
),

shifted_13 as (
    select *, xor(b_a, b_a >> 13) as c_a, xor(b_b, b_b >> 13) as c_b
    from times_85ebca6b
),

times_c2b2ae35 as (
    select
        *,
        ((((c_a * 49842) & 65535) << 16) + c_a * 44597) & 4294967295 as d_a,
        ((((c_b * 49842) & 65535) << 16) + c_b * 44597) & 4294967295 as d_b
    from shifted_13
),

mixed as (
    select row_id, n_blocks, pos, xor(d_a, d_a >> 16) as mixed_a, xor(d_b, d_b >> 16) as mixed_b
    from times_c2b2ae35
),

running as (
    select
        row_id,
        n_blocks,
        pos,
        cast(sum(mixed_a) over (partition by row_id order by pos rows between unbounded preceding and current row)
             as bigint) & 4294967295 as sum_a,
        cast(sum(mixed_b) over (partition by row_id order by pos rows between unbounded preceding and current row)
             as bigint) & 2147483647 as sum_b
    from mixed
),

factors as (
    select unnest(getvariable('reuse_factors')) as m
),

final as (
    select
        f.m,
        r.row_id,
        cast(floor(r.pos / f.m) as bigint) as pos,
        (r.sum_a << 31) + r.sum_b as pid
    from running as r
    cross join factors as f
    where (r.pos + 1) % f.m = 0 or r.pos = r.n_blocks - 1
)

select * from final
