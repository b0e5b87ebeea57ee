-- stg_rate_bins: requests per `rate_bin_s` bin of absolute time (bin k covers [k b, (k + 1) b)
-- seconds since the origin), bins with at least one request. rate_bin_s divides an hour, so each
-- bin lies in one hour and one day: the rate series, the hourly and the weekday profiles all
-- count this small table, one scan of the arrivals between them.
with final as (
    select cast(floor(arrival_s / getvariable('rate_bin_s')) as bigint) as bin_idx, count(*) as requests
    from stg_requests
    group by bin_idx
)

select * from final
