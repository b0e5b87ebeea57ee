-- session_quantiles: the session model's quantile functions (at `session_probs`, interpolated as
-- numpy's default), per scope (session_scoped's) x metric x class of turns (`session_buckets`:
-- scope, bucket, turns in [lo, hi); -1: pooled) x cell (first_new: 0 without, 1 with a shared
-- prefix; gap: the quarter of the session the gap ends in; -1: the class pooled), with each one's
-- count. Metrics: a first turn's new input (>= 1), the gaps between turns, think times, new
-- prompts (>= 1) and context growths of follow-ups. Only finite values count.
with firsts as (
    select scope, turns, greatest(cast(input_tokens - shared_tokens as double), 1) as x,
           case when shared_tokens > 0 then 1 else 0 end as grouped
    from session_scoped
    where turn = 1
),

follows as (
    select
        scope, turns, gap_s, think_s, growth, new_prompt,
        least(greatest(cast(ceil(cast(4 * (turn - 1) as double) / greatest(turns - 1, 1)) as bigint) - 1, 0), 3)
            as quarter
    from session_scoped
    where turn > 1
),

bucketed_firsts as (
    select f.scope, b.bucket, f.grouped, f.x
    from firsts as f
    join session_buckets as b on b.scope = f.scope and f.turns >= b.lo and f.turns < b.hi
),

bucketed_gaps as (
    select f.scope, b.bucket, f.quarter, f.gap_s as x
    from follows as f
    join session_buckets as b on b.scope = f.scope and f.turns >= b.lo and f.turns < b.hi
    where isfinite(f.gap_s)
),

vals as (
    select scope, 'first_new' as metric, -1 as bucket, -1 as cell, x from firsts
    union all
    select scope, 'gap' as metric, -1 as bucket, -1 as cell, gap_s as x from follows where isfinite(gap_s)
    union all
    select scope, 'think' as metric, -1 as bucket, -1 as cell, think_s as x from follows where isfinite(think_s)
    union all
    select scope, 'new_prompt' as metric, -1 as bucket, -1 as cell, greatest(cast(new_prompt as double), 1) as x
    from follows where new_prompt is not null
    union all
    select scope, 'growth' as metric, -1 as bucket, -1 as cell, cast(growth as double) as x
    from follows where growth is not null
    union all
    select scope, 'first_new' as metric, bucket, -1 as cell, x from bucketed_firsts
    union all
    select scope, 'first_new' as metric, bucket, grouped as cell, x from bucketed_firsts
    union all
    select scope, 'gap' as metric, bucket, -1 as cell, x from bucketed_gaps
    union all
    select scope, 'gap' as metric, bucket, quarter as cell, x from bucketed_gaps
),

final as (
    select scope, metric, bucket, cell, count(*) as n, quantile_cont(x, getvariable('session_probs')) as q
    from vals
    group by scope, metric, bucket, cell
)

select * from final
