-- session_rho: per scope (session_scoped's) and class of turns (`session_buckets`), the
-- Gaussian-copula correlation `gap_rho` (bundle/sessions.py _by_turns): the Pearson correlation
-- of each finite gap's normal score among the gaps of its class and quarter with its session's
-- first input's normal score among the sessions of its class, and the pairs' count. A normal score
-- is Phi^-1 of (average rank - 1/2) / n, by sql/macros.sql's normal_quantile_low and one
-- normal_refine step on the smaller of u and 1 - u (no cancellation against 1).
with firsts as (
    select s.scope, s.session, b.bucket, s.input_tokens as first_in
    from session_scoped as s
    join session_buckets as b on b.scope = s.scope and s.turns >= b.lo and s.turns < b.hi
    where s.turn = 1
),

gaps as (
    select
        s.scope, s.session, b.bucket, s.gap_s,
        least(greatest(cast(ceil(cast(4 * (s.turn - 1) as double) / greatest(s.turns - 1, 1)) as bigint) - 1, 0), 3)
            as quarter
    from session_scoped as s
    join session_buckets as b on b.scope = s.scope and s.turns >= b.lo and s.turns < b.hi
    where s.turn > 1 and isfinite(s.gap_s)
),

first_u as (
    select
        scope, session, bucket,
        (cast(rank() over (partition by scope, bucket order by first_in) - 1 as double)
         + cast(count(*) over (partition by scope, bucket, first_in) as double) / 2)
        / count(*) over (partition by scope, bucket) as u
    from firsts
),

gap_u as (
    select
        scope, session, bucket,
        (cast(rank() over (partition by scope, bucket, quarter order by gap_s) - 1 as double)
         + cast(count(*) over (partition by scope, bucket, quarter, gap_s) as double) / 2)
        / count(*) over (partition by scope, bucket, quarter) as u
    from gaps
),

scores as (
    select 0 as kind, scope, session, bucket, u, least(u, 1 - u) as p from first_u
    union all
    select 1 as kind, scope, session, bucket, u, least(u, 1 - u) as p from gap_u
),

guessed as (
    select kind, scope, session, bucket, u, p, normal_quantile_low(p) as x0 from scores
),

refined as (
    select kind, scope, session, bucket, u, normal_refine(x0, p) as x from guessed
),

z as (
    select kind, scope, session, bucket, case when u > 0.5 then -x else x end as z from refined
),

final as (
    select g.scope, g.bucket, count(*) as n, corr(g.z, f.z) as rho
    from z as g
    join z as f on f.scope = g.scope and f.session = g.session and f.kind = 0
    where g.kind = 1
    group by g.scope, g.bucket
)

select * from final
