-- gap_summary: one row. Gaps between consecutive arrivals over the whole trace (raw and
-- de-rounded), ties, the longest gap, and exact duplicate rows (equal in every column: equal
-- row_hash, which includes the arrival).
with final as (
    select
        count(gap_s) as gaps,
        count(*) filter (where gap_s > 0) as positive_gaps,
        count(*) filter (where gap_s = 0) as zero_gaps,
        count(*) - count(distinct row_hash) as duplicate_rows,
        avg(gap_s) as iat_mean_s,
        stddev_pop(gap_s) as iat_std_s,
        avg(gap_d_s) as iat_mean_d_s,
        stddev_pop(gap_d_s) as iat_std_d_s,
        max(gap_s) as max_gap_s
    from gap_rows
)

select * from final
