-- A condition of stg_agent_calls rows: a main (not subagent) call of a session's numbered turn.
call_kind <> 'subagent' and session_id is not null and turn is not null
