-- longest_gaps: the ten longest gaps between consecutive arrivals (ties: the earliest rows).
with final as (
    select arrival_s - gap_s as gap_start_s, gap_s, gap_s / getvariable('window_s') as gap_windows
    from gap_rows
    where gap_s is not null
    order by gap_s desc, row_id
    limit 10
)

select * from final
