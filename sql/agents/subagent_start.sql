-- How long after the latest main call of its session a subagent's first call comes: the count and
-- the quantiles at `probs`. Filled in by Python: the subagent-call condition, the probabilities.
with firsts as (select session_id, arrival_s from stg_agent_calls where {sub} and step = 1),
mains as (select session_id, arrival_s from stg_agent_calls where call_kind <> 'subagent')
select count(*), quantile_cont(f.arrival_s - m.arrival_s, {probs})
from firsts f asof join mains m on f.session_id = m.session_id and f.arrival_s >= m.arrival_s
