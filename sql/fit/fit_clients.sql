-- fit_clients: one row per group of stg_requests (grain: group_key). The bundle's client of the
-- group: itself, or '(other)' beyond the fit's max_clients largest groups (ranked by requests,
-- then name), and `client`, the client's index among the clients' names in sorted order. Only the
-- largest groups are ranked (a top-k); the others are joined against them, so a grouping of many
-- groups (sessions) is never sorted whole in one place.
with counts as (
    select group_key, count(*) as requests
    from stg_requests
    group by group_key
),

totals as (
    select count(*) as groups
    from counts
),

ranked as (
    select group_key, row_number() over (order by requests desc, group_key) as rank_n
    from counts
),

largest as (
    select group_key
    from ranked
    where rank_n < getvariable('fit_max_clients')
),

named as (
    select
        c.group_key,
        case
            when l.group_key is not null or t.groups <= getvariable('fit_max_clients') then c.group_key
            else getvariable('fit_other')
        end as client_name
    from counts as c
    cross join totals as t
    left join largest as l on c.group_key = l.group_key
),

names as (
    select client_name, cast(row_number() over (order by client_name) - 1 as integer) as client
    from (select distinct client_name from named) as distinct_names
),

final as (
    select n.group_key, n.client_name, i.client
    from named as n
    inner join names as i on n.client_name = i.client_name
)

select * from final
