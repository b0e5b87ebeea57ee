-- `records` with `s`, the object read with DuckDB's from_json into `structure` (fields as text; a
-- value of another type reads as NULL), and a `_problem` also where `key` is not a list. from_json,
-- not json_extract: lists of JSON text held by DuckDB grow with the file. Filled in by Python: the
-- records, the structure, the key and the record text kept (`record`).
select _line, s, {record} as _record,
       _problem
from (select _line, _record, try(from_json(j, '{structure}')) as s,
             coalesce(_problem, case when coalesce(try(json_type(j, '$.{key}')), 'NULL') <> 'ARRAY'
                                     then '{key} is not a list' end) as _problem
      from ({records}))
