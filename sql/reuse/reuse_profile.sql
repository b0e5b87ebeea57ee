-- reuse_profile: what the block reuse analysis needs to know first (grain: candidate block size,
-- the powers of two from 1 to 16384 tokens): the trace's requests and block references, and per
-- candidate size b the rows with blocks and input tokens on which ceil(input / b) = blocks; with
-- the median tokens per block over those rows (the estimate when no size fits 99 % of them).
with counted as (
    select
        coalesce(cast(input_tokens as bigint), 0) as input_tokens,
        case when hash_ids is null then 0 else array_length(hash_ids) end as n_blocks
    from requests
),

totals as (
    select
        count(*) as requests,
        coalesce(sum(n_blocks), 0) as blocks,
        sum(case when n_blocks > 0 and input_tokens > 0 then 1 else 0 end) as eligible_rows,
        quantile_cont(case when n_blocks > 0 and input_tokens > 0 then input_tokens / n_blocks end, 0.5)
            as median_tokens_per_block
    from counted
),

sizes as (
    select unnest([1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384]) as block_size
),

matched as (
    select
        s.block_size,
        sum(case when c.n_blocks > 0 and c.input_tokens > 0
                      and cast(ceil(c.input_tokens / s.block_size) as bigint) = c.n_blocks then 1 else 0 end)
            as exact_rows
    from counted as c
    cross join sizes as s
    group by s.block_size
),

final as (
    select
        m.block_size,
        coalesce(m.exact_rows, 0) as exact_rows,
        t.eligible_rows,
        t.requests,
        t.blocks,
        t.median_tokens_per_block
    from sizes as s
    left join matched as m on m.block_size = s.block_size
    cross join totals as t
)

select * from final
