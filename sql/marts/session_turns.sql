-- session_turns: one row per turn number (turns past 20 pooled into 20): requests at that turn
-- and the medians of their input, context growth, new prompt, gap and think time.
with turns as (
    select least(turn, 20) as turn, input_tokens, growth_tokens, new_prompt_tokens, gap_s, think_s
    from stg_session_turns
),

final as (
    select
        turn,
        count(*) as requests,
        quantile_cont(input_tokens, 0.5) as input_p50,
        quantile_cont(growth_tokens, 0.5) as growth_p50,
        quantile_cont(new_prompt_tokens, 0.5) as new_prompt_p50,
        quantile_cont(new_prompt_tokens, 0.9) as new_prompt_p90,
        quantile_cont(gap_s, 0.5) as gap_p50_s,
        quantile_cont(think_s, 0.5) as think_p50_s
    from turns
    group by turn
)

select * from final
