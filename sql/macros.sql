-- Macros the stage SQL shares, created once per stage database (pipeline/stages/sql.py: connect).
--
-- group_key_of(model, service, part): a group's name under the --group-by key (pipeline/grouping.py:
-- the key's values joined by '|', in the order client_id, session_id, model, service), from the
-- request's model and service (nulls already '(none)') and `part` (stg_requests.key_part: the
-- client and/or session id part when the key uses them, else null). Scans group by (model,
-- service, key_part) and name the groups after counting: building the name for every row cost
-- more than the counting.
create or replace macro group_key_of(model, service, part) as
    case
        when getvariable('group_by') = 'all' then 'all'
        else concat_ws('|', part, case when getvariable('group_model') then model end,
                       case when getvariable('group_service') then service end)
    end;
