-- session_start_bins: the sessions' first requests per modulation bin (`session_bin_s` from
-- `session_g0`, the bundle's first window start) and group (grain: group_key, bin): the arrival
-- model of a session trace is fitted on its starts (bundle/arrival_model.py
-- with_start_arrival_model; the groups give the dominant clients' own counts).
with starts as (
    select r.group_key, r.arrival_s
    from stg_requests as r
    join session_keys as k on k.row_id = r.row_id
    where k.session = k.row_id
),

final as (
    select
        group_key,
        cast(floor((arrival_s - getvariable('session_g0')) / getvariable('session_bin_s')) as bigint) as bin,
        count(*) as n
    from starts
    group by group_key, cast(floor((arrival_s - getvariable('session_g0')) / getvariable('session_bin_s')) as bigint)
)

select * from final
