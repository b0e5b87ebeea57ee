-- fit_head: the first fit_head_rows arrivals (grain: row_id), the stretch of the trace the
-- arrival model's candidates are generated over and scored against.
with final as (
    select row_id, arrival_s
    from stg_requests
    order by arrival_s, row_id
    limit getvariable('fit_head_rows')
)

select * from final
