-- fit_client_powers: one row per client with an inter-arrival and a fitted Weibull (grain:
-- client): sum((x / w_scale)^w_shape) over all its inter-arrivals, the parameters from
-- fit_client_params (registered by the caller).
with final as (
    select
        r.client,
        sum(exp(p.w_shape * (ln(r.x) - ln(p.w_scale)))) as sum_wpow
    from fit_rows as r
    inner join fit_client_params as p on r.client = p.client
    where r.x is not null
    group by r.client
)

select * from final
