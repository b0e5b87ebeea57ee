-- A condition of stg_agent_calls rows: a subagent's call, naming the chain it belongs to.
call_kind = 'subagent' and parent_id is not null
