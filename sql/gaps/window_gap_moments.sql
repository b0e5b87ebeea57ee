-- window_gap_moments: one row per analysis window holding a within-window gap: the gaps whose
-- both requests lie in the window (raw, and de-rounded by the later request's window), their
-- count, mean and population standard deviation. Windows without one are filled in by the caller.
with raw as (
    select window_idx, count(gap_s) as gaps, avg(gap_s) as iat_mean_s, stddev_pop(gap_s) as iat_std_s
    from gap_rows
    where same_window
    group by window_idx
),

derounded as (
    select window_idx, avg(gap_d_s) as iat_mean_d_s, stddev_pop(gap_d_s) as iat_std_d_s
    from gap_rows
    where same_window_d
    group by window_idx
),

final as (
    select
        coalesce(raw.window_idx, derounded.window_idx) as window_idx,
        coalesce(raw.gaps, 0) as gaps,
        raw.iat_mean_s,
        raw.iat_std_s,
        derounded.iat_mean_d_s,
        derounded.iat_std_d_s
    from raw
    full outer join derounded on raw.window_idx = derounded.window_idx
)

select * from final
