-- session_classes: per session model (scope), its sessions by class of turns (floor(log2 turns):
-- 1, 2-3, 4-7, ...) and its finite gaps by class of the turn they follow, the counts from which
-- bundle/session_stats.py draws the by-turns classes and the turns' gap survival classes.
with classed as (
    select scope, 'sessions' as kind, cast(floor(log2(turns)) as bigint) as cls
    from session_scoped
    where turn = 1
    union all
    select scope, 'gaps' as kind, cast(floor(log2(greatest(turn - 1, 1))) as bigint) as cls
    from session_scoped
    where turn > 1 and isfinite(gap_s)
),

final as (
    select scope, kind, cls, count(*) as n from classed group by scope, kind, cls
)

select * from final
