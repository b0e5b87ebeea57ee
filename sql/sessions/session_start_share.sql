-- session_start_share: per bin of `session_share_bin_s` s from `session_share_origin` (the bundle's
-- first window start; the first and last of `session_share_bins` bins take what falls before and
-- after), the sampled sessions' requests and their first turns (bundle/sessions.py start_share).
with placed as (
    select
        least(greatest(cast(floor((arrival_s - getvariable('session_share_origin')) / getvariable('session_share_bin_s'))
                            as bigint), 0), getvariable('session_share_bins') - 1) as bin,
        case when turn = 1 then 1 else 0 end as first
    from session_requests
),

final as (
    select bin, count(*) as n, sum(first) as firsts from placed group by bin
)

select * from final
