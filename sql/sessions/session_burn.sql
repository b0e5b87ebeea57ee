-- session_burn: the session window's burn time (bundle/under_way.py `_burn`): the least gap x
-- between turns whose remaining-gap tail R(x) = E[(G - x)+] / E[G] is at most 5 % (the least gap
-- when none is), with R there. Over the sorted gaps, E[(G - g_i)+] is the sum of the gaps from g_i
-- up less g_i times their number, over all gaps; one row.
with gaps as (
    select gap_s as g from session_requests where turn > 1 and isfinite(gap_s)
),

stats as (
    select count(*) as n, avg(g) as mean from gaps
),

ranked as (
    select
        g,
        sum(g) over (order by g desc rows between unbounded preceding and current row) as upper,
        row_number() over (order by g desc) as k
    from gaps
),

tails as (
    select r.g, r.k, (r.upper - r.g * r.k) / s.n / s.mean as tail
    from ranked as r
    cross join stats as s
),

final as (
    select g as burn_s, tail
    from tails
    order by case when tail <= 0.05 then 0 else 1 end, g, k desc
    limit 1
)

select * from final
