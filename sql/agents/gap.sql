-- A call's gap: from the previous call's end where the trace gives call ends (some gap_s), else
-- from its arrival (interval_s). An expression over stg_agent_calls.
case when (select count(gap_s) from stg_agent_calls) > 0 then gap_s else interval_s end
