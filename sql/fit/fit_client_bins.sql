-- fit_client_bins: one client's requests (fit_client, an index of fit_clients) per bin of
-- fit_bin_s seconds from the fit's grid start (grain: bin), for a client the arrival model fits a
-- rate modulation of its own (bundle/arrival_model.py).
with final as (
    select cast(floor((arrival_s - getvariable('fit_g0')) / getvariable('fit_bin_s')) as bigint) as bin, count(*) as n
    from fit_rows
    where client = getvariable('fit_client')
    group by 1
)

select * from final
