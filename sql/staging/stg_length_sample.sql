-- stg_length_sample: one row per sampled (field, tokens) pair: each length field's values of the
-- sampled rows (stg_sample_rows: probability `sample_p` by the seeded hash uniform); the input of
-- the family fits.
with sampled as (
    select input_tokens, output_tokens, reason_tokens
    from stg_requests
    where row_id in (select row_id from stg_sample_rows)
),

final as (
    select 'input' as field, cast(input_tokens as double) as tokens from sampled where input_tokens is not null
    union all
    select 'output' as field, cast(output_tokens as double) as tokens from sampled where output_tokens is not null
    union all
    select 'reason' as field, cast(reason_tokens as double) as tokens from sampled where reason_tokens is not null
)

select * from final
