-- session_scoped: session_requests' requests under each session model they feed (grain: scope x
-- request). Scope 0: the trace's model (every sampled session); a dominant client's (`session_scopes`:
-- client -> scope >= 1, registered by bundle/session_stats.py; a session is its first request's
-- client's); -1: the other clients' sessions pooled (the tail, where `session_tail`); -2: the
-- sessions that start `session_burn` s or more past `session_origin` (the window's `under_way` turns).
with firsts as (
    select session, client, arrival_s from session_requests where turn = 1
),

scoped as (
    select 0 as scope, session from firsts
    union all
    select s.scope, f.session
    from firsts as f
    join session_scopes as s on s.client = f.client
    union all
    select -1 as scope, f.session
    from firsts as f
    left join session_scopes as s on s.client = f.client
    where s.scope is null and getvariable('session_tail')
    union all
    select -2 as scope, session
    from firsts
    where arrival_s - getvariable('session_origin') >= getvariable('session_burn')
),

final as (
    select s.scope, r.*
    from scoped as s
    join session_requests as r on r.session = s.session
)

select * from final
