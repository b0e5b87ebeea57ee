-- stg_group_windows: one row per model, service, group (the --group-by key) and window with at
-- least one request: requests, failed requests, first and last arrival, and the sums and counts of
-- input and output tokens. Every per-group and per-window count (group sizes, the largest groups,
-- window rates, active groups, failures by level, the clients table) aggregates this small table
-- instead of scanning the requests again.
with source as (
    select model, service, key_part, window_idx, arrival_s, failed, input_tokens, output_tokens
    from stg_requests
),

counts as (
    select
        model,
        service,
        key_part,
        window_idx,
        count(*) as requests,
        sum(case when failed then 1 else 0 end) as failed,
        min(arrival_s) as first_arrival_s,
        max(arrival_s) as last_arrival_s,
        sum(input_tokens) as input_sum,
        count(input_tokens) as input_n,
        sum(output_tokens) as output_sum,
        count(output_tokens) as output_n
    from source
    group by model, service, key_part, window_idx
),

final as (
    select
        model, service, group_key_of(model, service, key_part) as group_key, window_idx, requests, failed,
        first_arrival_s, last_arrival_s, input_sum, input_n, output_sum, output_n
    from counts
)

select * from final
