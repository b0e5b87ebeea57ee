-- fit_window_powers: one row per (client, window) with an in-window inter-arrival and a fitted
-- Weibull (grain: client, window_idx): sum((x / w_scale)^w_shape) over those inter-arrivals, the
-- Weibull log-likelihood's last term, with the moment-matched parameters of the first pass
-- (fit_window_params, registered by the caller), as exp(shape (ln x - ln scale)).
with final as (
    select
        r.client,
        r.window_idx,
        sum(exp(p.w_shape * (ln(r.x_window) - ln(p.w_scale)))) as sum_wpow
    from fit_rows as r
    inner join fit_window_params as p on r.client = p.client and r.window_idx = p.window_idx
    where r.x_window is not null
    group by r.client, r.window_idx
)

select * from final
