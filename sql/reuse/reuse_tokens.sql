-- reuse_tokens: input tokens per request an infinite prefix cache serves (its leading hit blocks x
-- the block size, at most the input) and the new ones, over every request (a request without blocks
-- reuses none): their mean, median and 90th percentile, and the reused share of all input tokens.
with per_request as (
    select
        coalesce(cast(q.input_tokens as bigint), 0) as input_tokens,
        least(coalesce(r.leading_hits, 0) * getvariable('reuse_block_size'),
              coalesce(cast(q.input_tokens as bigint), 0)) as reused_tokens
    from requests as q
    left join reuse_requests as r on r.row_id = q.file_row_number and r.m = 1
),

final as (
    select
        count(*) as requests,
        avg(reused_tokens) as reused_mean,
        quantile_cont(reused_tokens, 0.5) as reused_p50,
        quantile_cont(reused_tokens, 0.9) as reused_p90,
        avg(input_tokens - reused_tokens) as new_mean,
        quantile_cont(input_tokens - reused_tokens, 0.5) as new_p50,
        quantile_cont(input_tokens - reused_tokens, 0.9) as new_p90,
        sum(reused_tokens) as reused_sum,
        sum(input_tokens) as input_sum
    from per_request
)

select * from final
