-- clients: one row per group (client, or the grouping named in findings.clients.group_by), the
-- largest `max_groups` groups by requests. Share of all requests, rank, mean rate over the trace
-- span, inter-arrival CV of the group's own arrivals (from `group_gaps`, which the gaps stage
-- computes on the arrival column), length means and medians (linear interpolation, from per-group
-- value counts: exact and small), failure rate, active windows.
-- Checks: share in [0, 1], rank unique, iat_cv >= 0.
with per_group as (
    select
        group_key,
        cast(sum(requests) as bigint) as requests,
        min(first_arrival_s) as first_arrival_s,
        max(last_arrival_s) as last_arrival_s,
        count(distinct window_idx) as active_windows,
        sum(input_sum) / nullif(sum(input_n), 0) as input_mean,
        sum(output_sum) / nullif(sum(output_n), 0) as output_mean,
        sum(failed) / sum(requests) as failure_rate
    from stg_group_windows
    group by group_key
),

-- counted by the group's parts (model and service only when the key uses them), named after;
-- added up from the per-group value counts the lengths stage reads too (no second scan of the rows)
key_counts as (
    select
        field,
        case when getvariable('group_model') then model end as key_model,
        case when getvariable('group_service') then service end as key_service,
        key_part,
        tokens,
        cast(sum(requests) as bigint) as n
    from stg_group_length_counts
    where field in ('input', 'output')
    group by all
),

value_counts as (
    select group_key_of(key_model, key_service, key_part) as group_key, field, tokens, n
    from key_counts
),

cumulative as (
    select
        group_key,
        field,
        tokens,
        sum(n) over (partition by group_key, field order by tokens) as below_or_at,
        (sum(n) over (partition by group_key, field) - 1) * 0.5 as position
    from value_counts
),

medians as (
    -- linear interpolation between the values at 0-based positions floor(h) and ceil(h)
    select
        group_key,
        field,
        min(tokens) filter (where below_or_at > floor(position))
            + (position - floor(position))
            * (min(tokens) filter (where below_or_at > ceil(position)) - min(tokens) filter (where below_or_at > floor(position))) as p50
    from cumulative
    group by group_key, field, position
),

ranked as (
    select
        p.*,
        row_number() over (order by p.requests desc, p.group_key) as rank,
        p.requests / sum(p.requests) over () as share
    from per_group as p
),

final as (
    select
        r.rank,
        r.group_key,
        r.requests,
        r.share,
        sum(r.share) over (order by r.rank) as cumulative_share,
        r.requests / nullif(getvariable('t1_s') - getvariable('t0_s'), 0) as rate_rps,
        g.iat_mean_s,
        g.iat_cv,
        r.input_mean,
        cast(mi.p50 as double) as input_p50,
        r.output_mean,
        cast(mo.p50 as double) as output_p50,
        r.failure_rate,
        r.active_windows,
        r.first_arrival_s,
        r.last_arrival_s
    from ranked as r
    left join group_gaps as g on g.level = r.group_key
    left join medians as mi on mi.group_key = r.group_key and mi.field = 'input'
    left join medians as mo on mo.group_key = r.group_key and mo.field = 'output'
    where r.rank <= getvariable('max_groups')
)

select * from final
