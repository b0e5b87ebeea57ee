-- fit_ks_sample: each client's first fit_ks_sample inter-arrivals in arrival order (ties in file
-- order), the sample its inter-arrival KS distance is measured on (grain: client, k).
with numbered as (
    select
        client,
        x,
        row_number() over (partition by client order by arrival_s, row_id) as k
    from fit_rows
    where x is not null
),

final as (
    select client, k, x
    from numbered
    where k <= getvariable('fit_ks_sample')
)

select * from final
