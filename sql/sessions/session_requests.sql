-- session_requests: the requests of (a sample of) the sessions (grain: request), with their turn,
-- the gap from the previous turn's arrival, the think time from its end, the context growth and
-- the new prompt (input - previous input - previous output), the session's turns and first input,
-- the seconds from the session's last turn to the trace's last arrival (`left_s`), the tokens of its
-- shared prefix (session_shared.sql; none without block ids), and the request's
-- bundle client (`bundle_clients`: name -> index, registered by bundle/session_sql.py; others
-- `session_client_default`). The sessions kept: every one up to `session_rows` requests, else
-- those whose key's hash h mod 10^6 is below `session_keep` (about that many requests, whole
-- sessions). h is MurmurHash3's 32-bit finalizer of the key as stg_requests.sql draws `u` for a
-- row number at seed 0, so numpy (bundle/sessions.py) draws the same sessions. Every bit
-- operation is parenthesized.
with keyed as (
    select
        k.session,
        (xor(k.session & 4294967295, 2246822507) + (((k.session >> 32) * 1640531527) & 4294967295))
            & 4294967295 as h0
    from session_keys as k
    where k.session = k.row_id
),

shifted_16 as (
    select session, xor(h0, h0 >> 16) as a from keyed
),

times_85ebca6b as (
    select session, ((((a * 34283) & 65535) << 16) + a * 51819) & 4294967295 as b from shifted_16
),

shifted_13 as (
    select session, xor(b, b >> 13) as c from times_85ebca6b
),

times_c2b2ae35 as (
    select session, ((((c * 49842) & 65535) << 16) + c * 44597) & 4294967295 as d from shifted_13
),

kept as (
    select session
    from times_c2b2ae35
    where (xor(d, d >> 16) % 1000000) < getvariable('session_keep')
),

last_arrival as (
    select max(arrival_s) as t_end from stg_requests
),

picked as (
    select
        k.session,
        r.row_id,
        r.arrival_s,
        r.input_tokens,
        r.output_tokens,
        r.latency_s,
        coalesce(h.shared_tokens, 0) as shared_tokens,
        coalesce(b.idx, getvariable('session_client_default')) as client
    from stg_requests as r
    join session_keys as k on k.row_id = r.row_id
    join kept as s on s.session = k.session
    left join session_shared as h on h.row_id = r.row_id
    left join bundle_clients as b on b.name = r.group_key
),

final as (
    select
        r.session,
        r.row_id,
        r.arrival_s,
        r.input_tokens,
        r.output_tokens,
        r.latency_s,
        r.shared_tokens,
        r.client,
        e.t_end - max(r.arrival_s) over (partition by r.session) as left_s,
        row_number() over (partition by r.session order by r.arrival_s, r.row_id) as turn,
        count(*) over (partition by r.session) as turns,
        first_value(r.input_tokens) over (partition by r.session order by r.arrival_s, r.row_id) as first_in,
        r.arrival_s - lag(r.arrival_s) over (partition by r.session order by r.arrival_s, r.row_id) as gap_s,
        r.arrival_s - lag(r.arrival_s + r.latency_s) over (partition by r.session order by r.arrival_s, r.row_id)
            as think_s,
        r.input_tokens - lag(r.input_tokens) over (partition by r.session order by r.arrival_s, r.row_id) as growth,
        r.input_tokens - lag(r.input_tokens) over (partition by r.session order by r.arrival_s, r.row_id)
            - lag(r.output_tokens) over (partition by r.session order by r.arrival_s, r.row_id) as new_prompt
    from picked as r
    cross join last_arrival as e
)

select * from final
