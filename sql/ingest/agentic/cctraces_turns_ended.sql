-- The user turns that end in the cc-traces records (ingest/agentic/cctraces.py): main calls (n / s)
-- that stop with end_turn, as cctraces.sql counts them. Filled in by Python: the typed traces.
select count(*)
from (select unnest(s.requests) as r from ({traces}))
where r.type in ('n', 's') and r.stop = 'end_turn'
