-- agent_gaps: one row per (kind, log-spaced bin) of idle gaps between consecutive calls of a chain:
-- kind `tool` (same turn: the agent waited on tools) or `think` (a new user turn); ten bins per
-- decade from 1 ms (gaps under 1 ms, including overlaps, fall in the first bin). Gaps come from
-- the previous call's end where call durations are known, else from its arrival (`measure`).
with gaps as (
    select
        gap_kind as kind,
        case when count(gap_s) over () > 0 then 'from previous end' else 'from previous arrival' end as measure,
        case when count(gap_s) over () > 0 then gap_s else interval_s end as gap_s
    from stg_agent_calls
    where gap_kind is not null
),

binned as (
    select kind, measure, greatest(floor(log10(greatest(gap_s, 1e-3)) * 10), -30) as bin_idx
    from gaps
    where gap_s is not null
),

final as (
    select
        kind,
        measure,
        bin_idx,
        power(10, bin_idx / 10) as gap_lo_s,
        power(10, (bin_idx + 1) / 10) as gap_hi_s,
        count(*) as gaps,
        count(*) / sum(count(*)) over (partition by kind) as share
    from binned
    group by kind, measure, bin_idx
)

select * from final
