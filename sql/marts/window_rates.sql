-- window_rates: one row per `window_s` window from the first arrival (empty windows included).
-- covered_s: the seconds of the window up to the last arrival (window_s but in the last window);
-- rate_rps = requests / covered_s; full: the window lies wholly in the trace. Rate, inter-arrival mean and CV of the gaps inside the window (raw and de-rounded, from
-- `window_gaps`, which the gaps stage computes on the arrival column), failures, mean lengths and
-- active groups (from stg_group_windows). Checks: requests >= 0, iat_cv >= 0, failed <= requests.
with windows as (
    select unnest(range(0, cast(floor((getvariable('t1_s') - getvariable('t0_s')) / getvariable('window_s')) as bigint) + 1)) as window_idx
),

per_window as (
    select
        window_idx,
        cast(sum(requests) as bigint) as requests,
        count(distinct group_key) as active_groups,
        cast(sum(failed) as bigint) as failed,
        sum(input_sum) / nullif(sum(input_n), 0) as input_mean,
        sum(output_sum) / nullif(sum(output_n), 0) as output_mean
    from stg_group_windows
    group by window_idx
),

final as (
    select
        w.window_idx,
        getvariable('t0_s') + w.window_idx * getvariable('window_s') as window_start_s,
        coalesce(p.requests, 0) as requests,
        least(getvariable('window_s'), getvariable('t1_s') - getvariable('t0_s') - w.window_idx * getvariable('window_s')) as covered_s,
        (w.window_idx + 1) * getvariable('window_s') <= getvariable('t1_s') - getvariable('t0_s') as full,
        coalesce(p.requests, 0) / nullif(least(getvariable('window_s'), getvariable('t1_s') - getvariable('t0_s') - w.window_idx * getvariable('window_s')), 0) as rate_rps,
        coalesce(g.gaps, 0) as gaps,
        g.iat_mean_s,
        g.iat_cv,
        g.iat_cv_derounded,
        coalesce(p.failed, 0) as failed,
        coalesce(p.failed, 0) / nullif(p.requests, 0) as failure_rate,
        p.input_mean,
        p.output_mean,
        coalesce(p.active_groups, 0) as active_groups
    from windows as w
    left join per_window as p using (window_idx)
    left join window_gaps as g using (window_idx)
)

select * from final
