-- fit_summary: one row: the rows the bundle is fitted from, their first and last arrival, whether
-- some request has reasoning tokens or images (the bundle's category), and whether a failed
-- request ever keeps an output (a source that marks failures otherwise than by a zero output).
with final as (
    select
        count(*) as requests,
        min(arrival_s) as first_s,
        max(arrival_s) as last_s,
        coalesce(max(case when reason_tokens > 0 then 1 else 0 end), 0) = 1 as has_reason,
        coalesce(max(case when image_count > 0 then 1 else 0 end), 0) = 1 as has_images,
        coalesce(max(case when failed and coalesce(output_tokens, 0) <> 0 then 1 else 0 end), 0) = 1 as nonzero
    from stg_requests
)

select * from final
