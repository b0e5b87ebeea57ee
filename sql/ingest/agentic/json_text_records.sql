-- One row per JSON text of `texts` (_line, filename, content): `j` (the text), `_record` and
-- `_problem` when the text is not a JSON object. Filled in by Python: the texts (files read by
-- json_files.sql, or a trace file's text handed over by Spark) and the record (cut past 64 Ki
-- characters, the cut marked).
select _line, j, {record} as _record,
       case when kind is null then 'not valid JSON' when kind <> 'OBJECT' then 'not a JSON object' end as _problem
from (select _line, filename, content as j, try(json_type(content)) as kind from {texts})
