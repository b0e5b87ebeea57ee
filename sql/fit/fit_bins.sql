-- fit_bins: requests per bin of fit_bin_s seconds from the fit's grid start (grain: bin), the
-- counts the arrival model's modulation is fitted on.
with final as (
    select cast(floor((arrival_s - getvariable('fit_g0')) / getvariable('fit_bin_s')) as bigint) as bin, count(*) as n
    from stg_requests
    group by 1
)

select * from final
