-- Whether the calls are an agent trace's: they name their kind, or a user turn holds several main
-- calls (Bailian's turns are one request each). Filled in by Python: the main-call condition.
select count(call_kind) filter (where call_kind <> 'unknown') > 0
    or coalesce((select max(n) from (select count(*) as n from stg_agent_calls where {main}
                                     group by session_id, turn)), 0) > 1
from stg_agent_calls
