-- raw (JSON lines): each non-blank physical line numbered (rec), whether it is valid JSON and an
-- object, and the fields the format reads as c0, c1, ... Filled in by Python: the lines'
-- table function (`lines`) and the field extractions (`fields`).
create temp view raw as
with lines as (
    select row_number() over () as rec, j from {lines}
), parsed as (
    select rec, j, json_valid(j) as valid,
           case when json_valid(j) then json_type(j) = 'OBJECT' else false end as ok from lines
    where j is not null and trim(j) <> ''
)
select rec, j, valid, ok, {fields} from parsed
