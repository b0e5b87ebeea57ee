-- gap_rows: one row per kept request, with the gap to the request before it in arrival order
-- (ties in file order), raw and de-rounded. The distributed form of the gap stream
-- (servetrace/stages/gaps.py): windows partition the work, so no step sees more than one
-- analysis window of rows. Within a window the predecessor comes from lag(); the first request of
-- a window takes the last arrival of the previous non-empty window (a table of windows, small).
-- De-rounded arrivals (arrival + jitter x u_jitter) are ordered the same way inside their own
-- de-rounded window; `same_window_d` says whether a de-rounded gap joins two requests of one
-- (raw) analysis window, the gaps a window's CV counts.
with requests_in_order as (
    select
        row_id,
        arrival_s,
        window_idx,
        u,
        row_hash,
        arrival_s + getvariable('jitter_s') * u_jitter as arrival_d_s
    from stg_requests
),

raw as (
    select
        *,
        lag(arrival_s) over (partition by window_idx order by arrival_s, row_id) as prev_s
    from requests_in_order
),

window_ends as (
    select window_idx, max(arrival_s) as last_s
    from requests_in_order
    group by window_idx
),

window_before as (
    select window_idx, lag(last_s) over (order by window_idx) as before_s
    from window_ends
),

derounded as (
    select
        *,
        cast(floor((arrival_d_s - getvariable('t0_s')) / getvariable('window_s')) as bigint) as window_d
    from raw
),

derounded_lag as (
    select
        *,
        lag(arrival_d_s) over (partition by window_d order by arrival_d_s, row_id) as prev_d_s,
        lag(window_idx) over (partition by window_d order by arrival_d_s, row_id) as prev_d_window,
        row_number() over (partition by window_d order by arrival_d_s desc, row_id desc) as from_end
    from derounded
),

derounded_ends as (
    select window_d, arrival_d_s as last_d_s, window_idx as last_window
    from derounded_lag
    where from_end = 1
),

derounded_before as (
    select
        window_d,
        lag(last_d_s) over (order by window_d) as before_d_s,
        lag(last_window) over (order by window_d) as before_window
    from derounded_ends
),

final as (
    select
        l.row_id,
        l.arrival_s,
        l.arrival_d_s,
        l.window_idx,
        l.u,
        l.row_hash,
        l.arrival_s - coalesce(l.prev_s, w.before_s) as gap_s,
        l.prev_s is not null as same_window,
        l.arrival_d_s - coalesce(l.prev_d_s, d.before_d_s) as gap_d_s,
        coalesce(l.prev_d_window, d.before_window) = l.window_idx as same_window_d
    from derounded_lag as l
    inner join window_before as w on l.window_idx = w.window_idx
    inner join derounded_before as d on l.window_d = d.window_d
)

select * from final
