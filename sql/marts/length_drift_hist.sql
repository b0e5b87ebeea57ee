-- length_drift_hist: one row per drift period (`drift_bin_s` seconds counted from the origin, so
-- days start at the origin's midnight and hours on the hour, not at the first arrival),
-- length field and fine logarithmic bin (`drift_bins_per_decade`; zero in bin -1000): the per-period
-- histograms from which the lengths stage computes KS and Wasserstein distances between periods.
-- One scan counts (period, token count) per field (token counts take few values); the bins are
-- computed on those counts, not per row.
with counts as (
    select
        cast(floor(arrival_s / getvariable('drift_bin_s')) as bigint) as period_idx,
        case
            when grouping(input_tokens) = 0 then 'input'
            when grouping(output_tokens) = 0 then 'output'
            else 'reason'
        end as field,
        coalesce(input_tokens, output_tokens, reason_tokens) as tokens,
        count(*) as requests
    from stg_requests
    group by grouping sets ((period_idx, input_tokens), (period_idx, output_tokens), (period_idx, reason_tokens))
),

final as (
    select
        period_idx,
        field,
        case when tokens <= 0 then -1000 else cast(floor(log10(tokens) * getvariable('drift_bins_per_decade')) as bigint) end as bin_idx,
        cast(sum(requests) as bigint) as requests
    from counts
    where tokens is not null
    group by all
)

select * from final
