-- TraceLab rounds (ingest/agentic/tracelab.py): one row per round of `records`, every field as
-- text, in line order; its turn is left to tracelab_turns.sql. A round is sent at its last input
-- event (else its first output) and ends at its last output. Filled in by Python: the typed
-- rounds, the input and output events' times.
with rounds as (
    select _line, _record, _problem, s,
           list_max({input_times}) as last_input,
           list_min({output_times}) as first_output,
           list_max({output_times}) as last_output,
           len(list_filter(s.timing_events, lambda e: e.event_type = 'user_message')) > 0 as from_user
    from ({rounds})
),
fields as (
    select _line, _record,
           coalesce(_problem, case when coalesce(last_input, first_output) is null
                                   then 'no timestamped input or output event' end) as _problem,
           coalesce(last_input, first_output) as sent, last_output, from_user,
           s.user as client_id, s.session_id as session_id, s.model as model, s.provider as service,
           s.input_tokens_total as input_tokens, s.output_tokens as output_tokens,
           s.reasoning_output_tokens as reason_tokens, s.prefix_tokens as cached_tokens,
           try_cast(s.round_index as bigint) as round_index
    from rounds
),
final as (
    select _line, _record, _problem,
           case when _problem is null then cast(sent as varchar) end as arrival_s,
           client_id, session_id, model, service, input_tokens, output_tokens, reason_tokens, cached_tokens,
           cast(greatest(last_output - sent, 0) as varchar) as latency_s,
           coalesce(from_user, false) as _from_user, round_index as _round
    from fields
)
select * from final order by _line
