-- stg_length_counts: one row per length field, model, service, detail group (one of the
-- `max_groups_detail` largest groups, else null) and token count: the requests with it. Token
-- counts are integers with few distinct values, so this table is small (thousands of rows for
-- millions of requests), and every exact length statistic (quantiles by linear interpolation,
-- moments, histograms) is computed from it rather than from the rows: exact, and nothing to spill.
-- One aggregation per field over the rows where it is present: a field a trace lacks (reason
-- tokens, mostly) is all null in requests.parquet, and its scan is skipped on the file's column
-- statistics, where a grouping set would still hash every row.
with counts as (
    select 'input' as field, model, service, key_part, input_tokens as tokens, count(*) as requests
    from stg_requests
    where input_tokens is not null
    group by model, service, key_part, input_tokens
    union all
    select 'output' as field, model, service, key_part, output_tokens as tokens, count(*) as requests
    from stg_requests
    where output_tokens is not null
    group by model, service, key_part, output_tokens
    union all
    select 'reason' as field, model, service, key_part, reason_tokens as tokens, count(*) as requests
    from stg_requests
    where reason_tokens is not null
    group by model, service, key_part, reason_tokens
),

-- groups beyond the detailed ones merge into group_key null, after counting (far fewer rows than requests)
final as (
    select c.field, c.model, c.service, t.group_key, cast(c.tokens as double) as tokens,
           cast(sum(c.requests) as bigint) as requests
    from counts as c
    left join stg_top_groups as t on t.group_key = group_key_of(c.model, c.service, c.key_part)
    group by all
)

select * from final
