-- Calls per (call kind, model), for the per-kind model mix.
select coalesce(call_kind, 'unknown') as kind, model, count(*) as n
from stg_agent_calls
where model is not null
group by all
