-- stg_group_length_counts: one row per length field, model, service, key part (the group's client
-- and/or session id part, see stg_requests) and token count: the requests with it, for every group.
-- The value counts both the length statistics (stg_length_counts, the detailed groups) and the
-- clients table (each group's medians) add up, so the rows are counted once for both.
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

final as (
    select field, model, service, key_part, tokens, requests from counts
)

select * from final
