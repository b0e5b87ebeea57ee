-- fit_head_sorted: whether the first fit_head_rows rows in file order are the first fit_head_rows
-- arrivals, as in a table ingest wrote (sorted by arrival, ties in file order): no row before the
-- cut arrives after a row past it (ties at the cut then fall as `order by arrival_s, row_id`
-- puts them). One scan with partial aggregates: no sort, no shuffle of rows.
with final as (
    select coalesce(min(case when row_id >= getvariable('fit_head_rows') then arrival_s end)
                    >= max(case when row_id < getvariable('fit_head_rows') then arrival_s end), true) as head_sorted
    from stg_requests
)

select * from final
