-- agent_context: one row per step of a chain (its k-th call; steps past 100 pooled as 100): calls,
-- input tokens (mean, median), growth over the previous step (mean, median) and the share of the
-- input served from the prefix cache (sum cached / sum input over calls that record it).
with steps as (
    select least(step, 100) as step, input_tokens, growth_tokens, cached_tokens from stg_agent_calls
),

final as (
    select
        step,
        count(*) as calls,
        avg(input_tokens) as input_mean,
        quantile_cont(input_tokens, 0.5) as input_p50,
        avg(growth_tokens) as growth_mean,
        quantile_cont(growth_tokens, 0.5) as growth_p50,
        sum(cached_tokens) / nullif(sum(case when cached_tokens is not null then input_tokens end), 0) as cached_share
    from steps
    group by step
)

select * from final
