-- stg_sessions: one row per session: turns, first and last arrival, duration, and as lists the
-- gaps between consecutive turns (arrival to arrival) and the think times (previous turn's end,
-- arrival + latency_s, to the next arrival; only where that latency is known).
with final as (
    select
        session_id,
        count(*) as turns,
        min(arrival_s) as first_arrival_s,
        max(arrival_s) as last_arrival_s,
        max(arrival_s) - min(arrival_s) as duration_s,
        list(gap_s order by turn) filter (where gap_s is not null) as gaps_s,
        list(think_s order by turn) filter (where think_s is not null) as thinks_s
    from stg_session_turns
    group by session_id
)

select * from final
