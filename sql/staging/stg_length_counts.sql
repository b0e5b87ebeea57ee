-- stg_length_counts: one row per length field, model, service, detail group (one of the
-- `max_groups_detail` largest groups, else null) and token count: the requests with it. Token
-- counts are integers with few distinct values, so this table is small (thousands of rows for
-- millions of requests), and every exact length statistic (quantiles by linear interpolation,
-- moments, histograms) is computed from it rather than from the rows: exact, and nothing to spill.
-- One scan: a grouping set per field.
with counts as (
    select
        case
            when grouping(input_tokens) = 0 then 'input'
            when grouping(output_tokens) = 0 then 'output'
            else 'reason'
        end as field,
        model,
        service,
        group_key_of(model, service, key_part) as group_key,
        coalesce(input_tokens, output_tokens, reason_tokens) as tokens,
        count(*) as requests
    from stg_requests
    group by grouping sets (
        (model, service, key_part, input_tokens),
        (model, service, key_part, output_tokens),
        (model, service, key_part, reason_tokens)
    )
),

-- groups beyond the detailed ones merge into group_key null, after counting (far fewer rows than requests)
final as (
    select c.field, c.model, c.service, t.group_key, cast(c.tokens as double) as tokens,
           cast(sum(c.requests) as bigint) as requests
    from counts as c
    left join stg_top_groups as t using (group_key)
    where c.tokens is not null
    group by all
)

select * from final
