-- session_lognormal: per scope (session_scoped's), the lognormal fits of the gaps between turns
-- and the think times (the positive finite ones): mu and sigma the mean and population standard
-- deviation of their logs, and the KS distance of their empirical CDF from the fitted one
-- (scipy.stats.kstest's: the largest of i/n - F(x_i) and F(x_i) - (i-1)/n over the sorted x),
-- F by sql/macros.sql's normal_cdf (sigma at least 1e-9, as bundle/sessions.py's).
with vals as (
    select scope, 'gap' as metric, gap_s as x from session_scoped where turn > 1 and isfinite(gap_s) and gap_s > 0
    union all
    select scope, 'think' as metric, think_s as x
    from session_scoped
    where turn > 1 and isfinite(think_s) and think_s > 0
),

params as (
    select scope, metric, count(*) as n, avg(ln(x)) as mu, stddev_pop(ln(x)) as sigma
    from vals
    group by scope, metric
),

scored as (
    select
        v.scope,
        v.metric,
        p.n,
        (ln(v.x) - p.mu) / greatest(p.sigma, 1e-9) as z,
        row_number() over (partition by v.scope, v.metric order by v.x) as i
    from vals as v
    join params as p on p.scope = v.scope and p.metric = v.metric
),

distances as (
    select scope, metric, i, n, normal_cdf(z) as f from scored
),

ks as (
    select scope, metric, max(greatest(cast(i as double) / n - f, f - cast(i - 1 as double) / n)) as ks
    from distances
    group by scope, metric
),

final as (
    select p.scope, p.metric, p.n, p.mu, p.sigma, k.ks
    from params as p
    join ks as k on k.scope = p.scope and k.metric = p.metric
)

select * from final
