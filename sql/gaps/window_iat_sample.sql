-- window_iat_sample: per analysis window, the per_window_n positive within-window de-rounded gaps
-- of smallest u (the per-window fits' seeded sample).
with ranked as (
    select
        window_idx,
        gap_d_s as iat_s,
        u,
        row_number() over (partition by window_idx order by u, row_id) as rank_u
    from gap_rows
    where same_window_d and gap_d_s > 0
),

final as (
    select window_idx, iat_s
    from ranked
    where rank_u <= getvariable('per_window_n')
    order by window_idx, u
)

select * from final
