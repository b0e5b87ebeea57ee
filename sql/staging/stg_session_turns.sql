-- stg_session_turns: one row per request that belongs to a session (its session id, or the
-- session inferred from prefix chains in `inferred_sessions`, empty when ids exist): its turn
-- number (1 = the session's first request, by arrival, ties in file order) and, from the turn
-- before, the gap arrival to arrival, the think time from that turn's end (arrival + latency_s;
-- null where its latency is unknown), the context growth (input - previous input) and the new
-- prompt (input - previous input - previous output: what the user added).
with members as (
    select
        r.row_id,
        coalesce(r.session_id, i.session_key) as session_id,
        r.arrival_s,
        r.latency_s,
        r.input_tokens,
        r.output_tokens
    from stg_requests as r
    left join inferred_sessions as i using (row_id)
    where coalesce(r.session_id, i.session_key) is not null
),

final as (
    select
        row_id,
        session_id,
        arrival_s,
        input_tokens,
        output_tokens,
        row_number() over w as turn,
        arrival_s - lag(arrival_s) over w as gap_s,
        arrival_s - lag(arrival_s + latency_s) over w as think_s,
        input_tokens - lag(input_tokens) over w as growth_tokens,
        input_tokens - lag(input_tokens) over w - lag(output_tokens) over w as new_prompt_tokens
    from members
    window w as (partition by session_id order by arrival_s, row_id)
)

select * from final
