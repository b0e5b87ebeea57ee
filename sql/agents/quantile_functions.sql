-- The agent model's distributions in one pass over stg_agent_calls: per distribution (`name`:
-- the model's field, `group.key` inside a group), how many calls give it a value and the value's
-- quantiles at `probs`. A call's gap is agents/gap.sql's; growths are over the previous call of
-- the chain; the cached ratio is cached over input tokens. Filled in by Python: the gap, the
-- main-call and subagent-call conditions, the probabilities.
with c as (
    select
        latency_s,
        gap_kind,
        step,
        opens_turn,
        input_tokens,
        growth_tokens,
        output_tokens,
        {gap} as gap,
        cast(cached_tokens as double) / nullif(input_tokens, 0) as cached_ratio,
        {main} as is_main,
        {sub} as is_sub
    from stg_agent_calls
),

v as (
    select 'latency_s' as name, latency_s as x from c
    union all select 'think_gap_s', gap from c where is_main and gap_kind = 'think'
    union all select 'tool_gap_s', gap from c where is_main and gap_kind = 'tool'
    union all select 'subagent_gap_s', gap from c where is_sub and step > 1
    union all select 'input_tokens.main_first', input_tokens from c where is_main and step = 1
    union all select 'input_tokens.main_turn', growth_tokens from c where is_main and step > 1 and opens_turn
    union all select 'input_tokens.main_tool', growth_tokens from c where is_main and step > 1 and not opens_turn
    union all select 'input_tokens.subagent_first', input_tokens from c where is_sub and step = 1
    union all select 'input_tokens.subagent_growth', growth_tokens from c where is_sub and step > 1
    union all select 'cached_ratio.main_first', cached_ratio from c where is_main and step = 1
    union all select 'cached_ratio.main_later', cached_ratio from c where is_main and step > 1
    union all select 'cached_ratio.subagent_first', cached_ratio from c where is_sub and step = 1
    union all select 'cached_ratio.subagent_later', cached_ratio from c where is_sub and step > 1
    union all select 'output_tokens.main_opens', output_tokens from c where is_main and opens_turn
    union all select 'output_tokens.main_in_turn', output_tokens from c where is_main and not opens_turn
    union all select 'output_tokens.subagent_opens', output_tokens from c where is_sub and step = 1
    union all select 'output_tokens.subagent_in_turn', output_tokens from c where is_sub and step > 1
)

select name, count(*) as n, quantile_cont(x, {probs}) as q
from v
where x is not null
group by name
order by name
