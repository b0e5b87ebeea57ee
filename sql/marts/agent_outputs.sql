-- agent_outputs: one row per (call kind, role): output tokens of the calls that open a turn of
-- their chain (`opens turn`) and of the calls inside a turn (`in turn`): calls, mean, quantiles.
with final as (
    select
        call_kind,
        case when opens_turn then 'opens turn' else 'in turn' end as role,
        count(*) as calls,
        avg(output_tokens) as mean,
        quantile_cont(output_tokens, [0.5, 0.9, 0.99]) as q,
        max(output_tokens) as max
    from stg_agent_calls
    group by call_kind, role
)

select call_kind, role, calls, mean, q[1] as p50, q[2] as p90, q[3] as p99, max from final
