-- The spread of session starts: the gaps between consecutive first main calls of sessions within
-- one window, each over its window's mean gap; their population standard deviation (the CV), how
-- many there are, and the distinct start times. Filled in by Python: the main-call condition, the
-- window.
with s as (select min(arrival_s) as t from stg_agent_calls where {main} group by session_id),
-- each start's gap to the one before it in its window (none for a window's first): a window per
-- window, not one over every session's start in one task
g as (select floor(t / {window_s}) as w, t - lag(t) over (partition by floor(t / {window_s}) order by t) as g from s),
n as (select g / avg(g) over (partition by w) as x from g where g is not null)
select (select stddev_pop(x) from n where x is not null), (select count(x) from n),
       (select count(distinct t) from s)
