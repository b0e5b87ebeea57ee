-- Macros the stage SQL shares, created once per stage database (pipeline/stages/sql.py: connect).
--
-- group_key_of(model, service, part): a group's name under the --group-by key, from the request's
-- model and service (nulls already '(none)') and `part` (stg_requests.key_part: the client or
-- session id for those groupings, else null). Scans group by (model, service, key_part) and name
-- the groups after counting: building "model / service" for every row cost more than the counting.
create or replace macro group_key_of(model, service, part) as
    case getvariable('group_by')
        when 'client_id' then part
        when 'session_id' then part
        when 'model' then model
        when 'service' then service
        when 'model_service' then model || ' / ' || service
        else 'all'
    end;
