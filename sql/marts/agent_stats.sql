-- agent_stats: one row for the whole agent trace: calls, sessions, turns; calls per turn and per
-- session; idle gaps between a chain's calls by kind (see stg_agent_calls); subagents, their
-- fan-out per spawning turn and their depth (subagents spawned by subagents); the cached share
-- of the input and the context growth per step; canceled calls; the tools a call asked for (per
-- call, the failed share of them, the calls after whose tools the agent went on by itself, where the
-- source records them: Copilot function_calls, auto_continue); and the arrival process of
-- sessions (first calls) against that of all calls (mean gap, population CV of the gaps).
with per_turn as (
    select count(*) as calls from stg_agent_calls
    where session_id is not null and turn is not null group by session_id, turn
),

per_session as (
    select count(*) as calls, min(arrival_s) as start_s from stg_agent_calls
    where session_id is not null group by session_id
),

gap_source as (
    select gap_kind, case when count(gap_s) over () > 0 then gap_s else interval_s end as gap_s,
           case when count(gap_s) over () > 0 then 'from previous end' else 'from previous arrival' end as measure
    from stg_agent_calls where gap_kind is not null
),

gaps as (
    select
        count(*) filter (where gap_kind = 'tool') as tool_gaps,
        quantile_cont(gap_s, [0.5, 0.9]) filter (where gap_kind = 'tool') as tool_q,
        avg(gap_s) filter (where gap_kind = 'tool') as tool_gap_mean_s,
        count(*) filter (where gap_kind = 'think') as think_gaps,
        quantile_cont(gap_s, [0.5, 0.9]) filter (where gap_kind = 'think') as think_q,
        avg(gap_s) filter (where gap_kind = 'think') as think_gap_mean_s,
        min(measure) as gap_measure
    from gap_source where gap_s is not null
),

tool_time as (
    select
        count(prev_tool_s) as tool_time_gaps,
        quantile_cont(prev_tool_s, 0.5) as tool_time_p50_s,
        avg(prev_tool_s) as tool_time_mean_s,
        sum(prev_tool_s) filter (where gap_s > 0) / nullif(sum(gap_s) filter (where gap_s > 0 and prev_tool_s is not null), 0)
            as tool_time_share
    from stg_agent_calls where gap_kind = 'tool'
),

recursive_depth as (
    -- a subagent whose parent is itself a subagent's call sits one level deeper (a parent_id names
    -- the spawning call's request_id, with `#k` for the k-th subagent of that call)
    with recursive edges as (
        select request_id, regexp_replace(parent_id, '#[0-9]+$', '') as parent_id from stg_agent_calls
        where call_kind = 'subagent'
    ),
    walk(request_id, parent_id, depth) as (
        select request_id, parent_id, 1 from edges
        union all
        select w.request_id, e.parent_id, w.depth + 1 from walk w join edges e on w.parent_id = e.request_id
        where w.depth < 32
    )
    select max(depth) as depth_max from walk
),

fanout as (
    select count(*) as spawning_turns, avg(subagents) as fanout_mean, max(subagents) as fanout_max
    from (select count(distinct parent_id) as subagents from stg_agent_calls
          where call_kind = 'subagent' and parent_id is not null group by session_id, turn)
),

calls as (
    select
        count(*) as calls,
        count(distinct session_id) as sessions,
        count(distinct (session_id, turn)) filter (where session_id is not null and turn is not null) as turns,
        count(*) filter (where call_kind = 'subagent') as subagent_calls,
        count(distinct parent_id) filter (where call_kind = 'subagent') as subagents,
        count(cached_tokens) as cached_calls,
        sum(cached_tokens) / nullif(sum(case when cached_tokens is not null then input_tokens end), 0) as cached_share,
        quantile_cont(growth_tokens, 0.5) as growth_p50,
        avg(growth_tokens) as growth_mean,
        count(canceled) as canceled_known,
        count(*) filter (where canceled) as canceled_calls,
        count(tool_calls) as tool_calls_known,
        avg(tool_calls) as tool_calls_mean,
        quantile_cont(tool_calls, 0.5) as tool_calls_p50,
        quantile_cont(tool_calls, 0.9) as tool_calls_p90,
        max(tool_calls) as tool_calls_max,
        sum(tool_failures) / nullif(sum(tool_calls) filter (where tool_failures is not null), 0) as tool_failure_share,
        count(auto_continued) as auto_continue_known,
        count(*) filter (where auto_continued) as auto_continued_calls
    from stg_agent_calls
),

call_gaps as (
    select arrival_s - lag(arrival_s) over (order by arrival_s, row_id) as g from stg_agent_calls
),

session_gaps as (
    select start_s - lag(start_s) over (order by start_s) as g from per_session
),

arrivals as (
    select
        (select count(*) from per_session) as session_starts,
        (select count(distinct start_s) from per_session) as distinct_session_starts,
        (select avg(g) from session_gaps) as session_iat_mean_s,
        (select stddev_pop(g) / nullif(avg(g), 0) from session_gaps) as session_iat_cv,
        (select avg(g) from call_gaps) as call_iat_mean_s,
        (select stddev_pop(g) / nullif(avg(g), 0) from call_gaps) as call_iat_cv
),

final as (
    select
        calls.*,
        (select avg(calls) from per_turn) as calls_per_turn_mean,
        (select quantile_cont(calls, 0.5) from per_turn) as calls_per_turn_p50,
        (select quantile_cont(calls, 0.9) from per_turn) as calls_per_turn_p90,
        (select max(calls) from per_turn) as calls_per_turn_max,
        (select avg(calls) from per_session) as calls_per_session_mean,
        (select quantile_cont(calls, 0.5) from per_session) as calls_per_session_p50,
        (select quantile_cont(calls, 0.9) from per_session) as calls_per_session_p90,
        (select max(calls) from per_session) as calls_per_session_max,
        gaps.tool_gaps, gaps.tool_q[1] as tool_gap_p50_s, gaps.tool_q[2] as tool_gap_p90_s, gaps.tool_gap_mean_s,
        gaps.think_gaps, gaps.think_q[1] as think_gap_p50_s, gaps.think_q[2] as think_gap_p90_s,
        gaps.think_gap_mean_s, gaps.gap_measure,
        tool_time.*,
        fanout.spawning_turns, fanout.fanout_mean, fanout.fanout_max,
        recursive_depth.depth_max,
        arrivals.*
    from calls, gaps, tool_time, fanout, recursive_depth, arrivals
)

select * from final
