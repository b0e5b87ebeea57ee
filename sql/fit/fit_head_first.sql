-- fit_head_first: fit_head (the first fit_head_rows arrivals) of a table sorted by arrival
-- (fit_head_sorted): the rows before the cut in file order, read where they lie. fit_head's
-- `order by ... limit` sends each partition's first rows through one task instead.
with final as (
    select row_id, arrival_s
    from stg_requests
    where row_id < getvariable('fit_head_rows')
)

select * from final
