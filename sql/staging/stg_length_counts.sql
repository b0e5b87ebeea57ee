-- stg_length_counts: one row per length field, model, service, detail group (one of the
-- `max_groups_detail` largest groups, else null) and token count: the requests with it. Token
-- counts are integers with few distinct values, so this table is small (thousands of rows for
-- millions of requests), and every exact length statistic (quantiles by linear interpolation,
-- moments, histograms) is computed from it rather than from the rows: exact, and nothing to spill.
-- Groups beyond the detailed ones merge into group_key null, from the per-group value counts
-- (stg_group_length_counts: far fewer rows than requests).
with final as (
    select c.field, c.model, c.service, t.group_key, cast(c.tokens as double) as tokens,
           cast(sum(c.requests) as bigint) as requests
    from stg_group_length_counts as c
    left join stg_top_groups as t on t.group_key = group_key_of(c.model, c.service, c.key_part)
    group by all
)

select * from final
