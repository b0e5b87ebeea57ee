-- Per bundle client (`call_clients`: each call's client by its row): the calls it made, the
-- sessions it started (the client of a session's first main call, by arrival then file order), its
-- distinct start times, and the spread of its session starts as session_starts.sql measures the
-- trace's (gaps inside one window over that window's mean gap: their CV and count). Filled in by
-- Python: the main-call condition, the window.
with c as (select s.session_id, s.arrival_s, s.row_id, s.call_kind, s.turn, k.client
           from stg_agent_calls s join call_clients k using (row_id)),
firsts as (
    select client, t from (
        select client, arrival_s as t,
               row_number() over (partition by session_id order by arrival_s, row_id) as r
        from c where {main})
    where r = 1
),
calls as (select client, count(*) as calls from c group by client),
g as (select client, floor(t / {window_s}) as w,
             t - lag(t) over (partition by client, floor(t / {window_s}) order by t) as g from firsts),
n as (select client, g / avg(g) over (partition by client, w) as x from g where g is not null),
cv as (select client, stddev_pop(x) as cv, count(x) as gaps from n where x is not null group by client),
st as (select client, count(*) as sessions, count(distinct t) as distinct_starts from firsts group by client)
select calls.client, calls.calls, coalesce(st.sessions, 0), coalesce(st.distinct_starts, 0), cv.cv,
       coalesce(cv.gaps, 0)
from calls left join st using (client) left join cv using (client)
order by calls.client
