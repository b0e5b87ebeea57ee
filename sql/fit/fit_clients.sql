-- fit_clients: one row per group of stg_requests (grain: group_key). The bundle's client of the
-- group: itself, or '(other)' beyond the fit's max_clients largest groups (ranked by requests,
-- then name), and `client`, the client's index among the clients' names in sorted order.
with counts as (
    select group_key, count(*) as requests
    from stg_requests
    group by group_key
),

ranked as (
    select
        group_key,
        row_number() over (order by requests desc, group_key) as rank_n,
        count(*) over () as groups
    from counts
),

named as (
    select
        group_key,
        case
            when rank_n < getvariable('fit_max_clients') or groups <= getvariable('fit_max_clients') then group_key
            else getvariable('fit_other')
        end as client_name
    from ranked
),

final as (
    select
        group_key,
        client_name,
        cast(dense_rank() over (order by client_name) - 1 as integer) as client
    from named
)

select * from final
