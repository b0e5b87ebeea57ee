-- reuse_sample: the references the LRU curve is computed on, per re-blocking factor m (grain: m,
-- request, block position): every one, or a SHARDS sample (Waldspurger et al., FAST '15: the
-- references whose prefix id's low 24 bits fall below the factor's threshold, a spatial sample at
-- rate threshold / 2^24), from the small table reuse_plan (m, threshold, rate). Each gets its index
-- `i` in reference order (requests in file order, blocks in order) and the index of the previous
-- reference to the same prefix id (`prev`, null for a first reference).
with kept as (
    select r.m, r.row_id, r.pos, r.pid, p.rate
    from reuse_refs as r
    join reuse_plan as p on p.m = r.m
    where (r.pid & 16777215) < p.threshold
),

ordered as (
    select *, row_number() over (partition by m order by row_id, pos) - 1 as i
    from kept
),

final as (
    select *, lag(i) over (partition by m, pid order by i) as prev
    from ordered
)

select * from final
