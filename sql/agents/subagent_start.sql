-- How long after the latest main call of its session (at or before it) a subagent's first call
-- comes: the count and the quantiles at `probs`. The session's calls in arrival order, a main call
-- before a subagent's at the same instant; the latest main arrival is the running maximum of the
-- main calls' (a subagent with no main call before it is left out). Filled in by Python: the
-- subagent-call condition, the probabilities.
with calls as (
    select session_id, arrival_s, 1 as first_call from stg_agent_calls where {sub} and step = 1
    union all
    select session_id, arrival_s, 0 from stg_agent_calls where call_kind <> 'subagent'
),

after_main as (
    select
        first_call,
        arrival_s - max(case when first_call = 0 then arrival_s end) over (
            partition by session_id order by arrival_s, first_call
            rows between unbounded preceding and current row
        ) as d
    from calls
    where session_id is not null
)

select count(d), quantile_cont(d, {probs}) from after_main where first_call = 1 and d is not null
