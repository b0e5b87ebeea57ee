-- session_survival: per session model (scope), its sessions counted by (turns, s_left), where
-- s_left is the chance a session's next gap is longer than the seconds from its last turn to the
-- span end (`left_s`): one minus the share of the gaps of its gap range (`session_gap_ranges`: a
-- session's class of turns -> the classes of the turn a gap follows that it reads, drawn by
-- bundle/turns.py's rule in bundle/session_stats.py) up to `left_s`. The censored turns PMF's EM
-- (bundle/turns.py) runs on these counts. Gaps sort before sessions at a tie (a gap equal to
-- `left_s` is not longer). s_left is null where the scope has no finite gap.
with own as (
    select scope, turns, left_s, cast(floor(log2(turns)) as bigint) as cls
    from session_scoped
    where turn = 1
),

gaps as (
    select scope, gap_s, cast(floor(log2(greatest(turn - 1, 1))) as bigint) as cls
    from session_scoped
    where turn > 1 and isfinite(gap_s)
),

events as (
    select scope, cls as target, left_s as v, 1 as kind, turns from own
    union all
    select g.scope, r.own as target, g.gap_s as v, 0 as kind, cast(null as bigint) as turns
    from gaps as g
    join session_gap_ranges as r on r.scope = g.scope and g.cls >= r.lo and g.cls <= r.hi
),

counted as (
    select
        scope,
        kind,
        turns,
        sum(1 - kind) over (partition by scope, target order by v, kind rows between unbounded preceding and current row)
            as below,
        sum(1 - kind) over (partition by scope, target) as n
    from events
),

final as (
    select scope, turns, 1 - cast(below as double) / nullif(n, 0) as s_left, count(*) as sessions
    from counted
    where kind = 1
    group by scope, turns, 1 - cast(below as double) / nullif(n, 0)
)

select * from final
