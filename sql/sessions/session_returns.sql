-- session_returns: the session window's `returns` (bundle/under_way.py) as counts: per fifth of
-- [origin + lag, last arrival] the requests and those whose session's previous turn came within
-- `session_lag` s (the median gap). `session_origin` (first arrival), `session_span`: set by
-- bundle/session_stats.py; the arithmetic is under_way.returns' step for step.
with placed as (
    select
        least(greatest(cast(floor((arrival_s - getvariable('session_origin') - getvariable('session_lag'))
                                  / (getvariable('session_span') - getvariable('session_lag')) * 5) as bigint), 0), 4)
            as fifth,
        case when isfinite(gap_s) and gap_s <= getvariable('session_lag') then 1 else 0 end as hit
    from session_requests
    where arrival_s - getvariable('session_origin') >= getvariable('session_lag')
),

final as (
    select fifth, count(*) as n, sum(hit) as k from placed group by fifth
)

select * from final
