-- iat_sample: the seeded sample of raw gaps the inter-arrival fits use (the later request's uniform
-- u below sample_p), ties included (the fit treats a gap below the timestamp grid as rounded), in
-- arrival order.
with final as (
    select gap_s as iat_s
    from gap_rows
    where gap_s is not null and u < getvariable('sample_p')
    order by arrival_s, row_id
)

select * from final
