-- iat_sample: the seeded sample of positive de-rounded gaps the inter-arrival fits use (the later
-- request's uniform u below sample_p), in arrival order.
with final as (
    select gap_d_s as iat_s
    from gap_rows
    where gap_d_s > 0 and u < getvariable('sample_p')
    order by arrival_d_s, row_id
)

select * from final
