-- fit_rows: one row per kept request (grain: row_id), as the bundle fit sees it: its client (an
-- index, fit_clients), its window and dataset window (indices from the fit's grid start g0, the
-- same floor(offset x 1 / width) the streamed fit uses), whether it failed, and three
-- inter-arrivals, each floored at iat_floor_s (tied timestamps would give log 0):
-- `x` since the client's previous request (null for its first), `x_window` the same when that
-- request lies in the same window (a window's statistics never count a gap across its edge), and
-- `x_all_window` since the previous request of the whole trace when in the same window.
-- Predecessors come from lag() within (client, window) and within window; a client's first
-- request of a window takes the last arrival of the client's previous non-empty window (a table
-- of clients x windows, small), so no step needs more than one window of one client's rows.
with located as (
    select
        r.row_id,
        r.arrival_s,
        c.client,
        cast(floor((r.arrival_s - getvariable('fit_g0')) * getvariable('fit_inv_window')) as bigint) as window_idx,
        cast(floor((r.arrival_s - getvariable('fit_g0')) * getvariable('fit_inv_dataset')) as bigint) as dataset_idx,
        coalesce(r.failed, false) as failed,
        r.input_tokens,
        r.output_tokens,
        r.reason_tokens,
        r.image_count,
        r.image_tokens
    from stg_requests as r
    inner join fit_clients as c on r.group_key = c.group_key
),

lagged as (
    select
        *,
        lag(arrival_s) over (partition by client, window_idx order by arrival_s, row_id) as prev_s,
        lag(arrival_s) over (partition by window_idx order by arrival_s, row_id) as prev_all_s
    from located
),

client_window_ends as (
    select client, window_idx, max(arrival_s) as last_s
    from located
    group by client, window_idx
),

client_window_before as (
    select client, window_idx, lag(last_s) over (partition by client order by window_idx) as before_s
    from client_window_ends
),

final as (
    select
        l.row_id,
        l.arrival_s,
        l.client,
        l.window_idx,
        l.dataset_idx,
        l.failed,
        l.input_tokens,
        l.output_tokens,
        l.reason_tokens,
        l.image_count,
        l.image_tokens,
        case
            when coalesce(l.prev_s, b.before_s) is not null
                then greatest(l.arrival_s - coalesce(l.prev_s, b.before_s), getvariable('iat_floor_s'))
        end as x,
        case
            when l.prev_s is not null then greatest(l.arrival_s - l.prev_s, getvariable('iat_floor_s'))
        end as x_window,
        case
            when l.prev_all_s is not null then greatest(l.arrival_s - l.prev_all_s, getvariable('iat_floor_s'))
        end as x_all_window
    from lagged as l
    inner join client_window_before as b on l.client = b.client and l.window_idx = b.window_idx
)

select * from final
