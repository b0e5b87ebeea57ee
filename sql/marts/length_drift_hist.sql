-- length_drift_hist: one row per drift period (`drift_bin_s` seconds counted from the origin, so
-- days start at the origin's midnight and hours on the hour, not at the first arrival),
-- length field and fine logarithmic bin (`drift_bins_per_decade`; zero in bin -1000): the per-period
-- histograms from which the lengths stage computes KS and Wasserstein distances between periods.
-- One aggregation per field counts (period, token count) over the rows where the field is present
-- (a field the trace lacks is skipped on the file's statistics; token counts take few values); the
-- bins are computed on those counts, not per row.
with counts as (
    select cast(floor(arrival_s / getvariable('drift_bin_s')) as bigint) as period_idx, 'input' as field,
           input_tokens as tokens, count(*) as requests
    from stg_requests
    where input_tokens is not null
    group by period_idx, input_tokens
    union all
    select cast(floor(arrival_s / getvariable('drift_bin_s')) as bigint) as period_idx, 'output' as field,
           output_tokens as tokens, count(*) as requests
    from stg_requests
    where output_tokens is not null
    group by period_idx, output_tokens
    union all
    select cast(floor(arrival_s / getvariable('drift_bin_s')) as bigint) as period_idx, 'reason' as field,
           reason_tokens as tokens, count(*) as requests
    from stg_requests
    where reason_tokens is not null
    group by period_idx, reason_tokens
),

final as (
    select
        period_idx,
        field,
        case when tokens <= 0 then -1000 else cast(floor(log10(tokens) * getvariable('drift_bins_per_decade')) as bigint) end as bin_idx,
        cast(sum(requests) as bigint) as requests
    from counts
    group by all
)

select * from final
