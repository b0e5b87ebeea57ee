-- session_stats: one row for the whole trace: sessions, turns per session (mean and quantiles),
-- session duration quantiles, gap-between-turns quantiles (arrival to arrival), think-time
-- quantiles (previous turn's end to arrival, where latency is known; linear interpolation), the
-- follow-up requests (turn > 1) and the inter-arrival CV of session starts.
with gaps as (
    select unnest(gaps_s) as gap_s from stg_sessions
),

gap_stats as (
    select count(*) as gaps, quantile_cont(gap_s, [0.5, 0.9, 0.99]) as gap_q from gaps
),

thinks as (
    select unnest(thinks_s) as think_s from stg_sessions
),

think_stats as (
    select
        count(*) as thinks,
        quantile_cont(think_s, [0.5, 0.9, 0.99]) as think_q,
        avg(case when think_s < 0 then 1.0 else 0.0 end) as think_negative_share
    from thinks
),

starts as (
    select first_arrival_s - lag(first_arrival_s) over (order by first_arrival_s) as iat_s from stg_sessions
),

start_stats as (
    select stddev_pop(iat_s) / nullif(avg(iat_s), 0) as start_iat_cv from starts where iat_s is not null
),

session_stats as (
    select
        count(*) as sessions,
        sum(turns) as turns,
        avg(turns) as turns_mean,
        quantile_cont(cast(turns as double), [0.5, 0.9, 0.99]) as turns_q,
        max(turns) as turns_max,
        sum(case when turns > 1 then 1 else 0 end) as multi_turn_sessions,
        sum(turns - 1) as follow_ups,
        quantile_cont(duration_s, [0.5, 0.9]) as duration_q,
        (max(first_arrival_s) - min(first_arrival_s)) as starts_span_s
    from stg_sessions
),

final as (
    select
        sessions,
        turns,
        turns_mean,
        turns_q[1] as turns_p50,
        turns_q[2] as turns_p90,
        turns_q[3] as turns_p99,
        turns_max,
        multi_turn_sessions,
        follow_ups,
        duration_q[1] as duration_p50_s,
        duration_q[2] as duration_p90_s,
        sessions / nullif(starts_span_s, 0) as session_rate_rps,
        start_iat_cv,
        gaps,
        gap_q[1] as gap_p50_s,
        gap_q[2] as gap_p90_s,
        gap_q[3] as gap_p99_s,
        thinks,
        think_q[1] as think_p50_s,
        think_q[2] as think_p90_s,
        think_q[3] as think_p99_s,
        think_negative_share
    from session_stats
    cross join gap_stats
    cross join think_stats
    cross join start_stats
)

select * from final
