-- timestamp_grid: one row per candidate timestamp grid g (seconds): the share of arrivals that
-- lie within 2 % of g of a multiple of g. A share near 1 means timestamps were rounded to g
-- (random times give about 0.04); the quality stage takes the largest such g as the resolution.
-- The shares come from every `grid_every`-th row (at most about a million rows): a share is a
-- proportion, known to 0.1 % from a million rows, and the test is share >= 0.9.
with candidates as (
    select unnest([0.001, 0.01, 0.1, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0]) as grid_s
),

on_grid as (
    select
        c.grid_s,
        avg(case when abs(r.arrival_s / c.grid_s - round(r.arrival_s / c.grid_s)) <= 0.02 then 1.0 else 0.0 end) as share_on_grid
    from (select arrival_s from stg_requests where row_id % getvariable('grid_every') = 0) as r
    cross join candidates as c
    group by c.grid_s
),

final as (
    select grid_s, share_on_grid from on_grid
)

select * from final
