-- stg_reason_sample: one row per sampled request (stg_sample_rows: probability `sample_p` by the
-- seeded hash uniform) with reason_tokens > 0: reasoning length and output length, for the
-- mixture fit.
with rows as (
    select reason_tokens, output_tokens
    from stg_requests
    where reason_tokens > 0 and row_id in (select row_id from stg_sample_rows)
),

final as (
    select cast(reason_tokens as double) as reason_tokens, cast(output_tokens as double) as output_tokens
    from rows
)

select * from final
