-- session_summary: one row of session_requests' (the sampled sessions') totals for the session
-- model's driver side (bundle/session_stats.py): requests, sessions, the first and last arrival, the finite
-- gaps between turns (count, mean, median), the session window's `returns` and `under_way` read them.
with gaps as (
    select gap_s from session_requests where turn > 1 and isfinite(gap_s)
),

gap_stats as (
    select count(*) as gaps, avg(gap_s) as gap_mean, quantile_cont(gap_s, 0.5) as gap_median from gaps
),

final as (
    select
        count(*) as requests,
        count(case when r.turn = 1 then 1 end) as sessions,
        min(r.arrival_s) as first_s,
        max(r.arrival_s) as last_s,
        max(g.gaps) as gaps,
        max(g.gap_mean) as gap_mean,
        max(g.gap_median) as gap_median
    from session_requests as r
    cross join gap_stats as g
)

select * from final
